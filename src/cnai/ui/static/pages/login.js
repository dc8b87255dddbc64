// Login: a token is checked with /auth/v1/whoami before it is stored.

import { useState } from "preact/hooks";
import { auth, whoami } from "../api.js";
import { ErrorBox, html } from "../components.js";

export function Login({ onLogin, notice }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState(null);
  const [checking, setChecking] = useState(false);

  async function submit(event) {
    event.preventDefault();
    const value = token.trim();
    if (!value) return;
    setChecking(true);
    setError(null);
    try {
      const principal = await whoami(value);
      auth.save(value);
      onLogin(principal);
    } catch (err) {
      setError(err);
    } finally {
      setChecking(false);
    }
  }

  return html`<main class="login" id="login-page">
    <form class="card" onSubmit=${submit}>
      <h1>cnai</h1>
      <p>Sign in with an API token: the admin token <code>cnai up</code> wrote to
        <code>~/.cnai/config.yaml</code>, or one from <code>cnai create token</code>.</p>
      ${notice ? html`<p class="notice" id="login-notice">${notice}</p>` : ""}
      <label for="token">Token</label>
      <input id="token" name="token" type="password" autocomplete="off" autofocus
        value=${token} onInput=${(e) => setToken(e.currentTarget.value)} />
      <button id="login-submit" type="submit" disabled=${checking}>${checking ? "Checking…" : "Sign in"}</button>
      <div id="login-error"><${ErrorBox} error=${error} prefix="Sign-in failed: " /></div>
    </form>
  </main>`;
}
