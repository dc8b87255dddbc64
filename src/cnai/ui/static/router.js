// Hash routing: "#/jobs/NAMESPACE/NAME". The server serves the same page at "/" for every
// route, so a deep link survives a reload with no server-side fallback, and no page path
// can collide with an API path (/apis, /auth).
//
// A route is {path: "/jobs/:namespace/:name", page: Component, title, nav}; the
// application's table of routes is in app.js.

import { useEffect, useState } from "preact/hooks";

function compile(path) {
  const source = path
    .split("/")
    .map((part) => (part.startsWith(":") ? `(?<${part.slice(1)}>[^/]+)` : part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
    .join("/");
  return new RegExp(`^${source}/?$`);
}

/** The route matching ``hash`` and its decoded parameters, or null. */
export function match(routes, hash) {
  const path = decodeURI(hash.replace(/^#/, "").split("?")[0]) || "/";
  for (const route of routes) {
    route.regexp = route.regexp || compile(route.path);
    const found = route.regexp.exec(path);
    if (found) {
      const params = {};
      for (const [key, value] of Object.entries(found.groups || {})) {
        params[key] = decodeURIComponent(value);
      }
      return { route, params };
    }
  }
  return null;
}

/** The current location's hash, kept current. */
export function useHash() {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const onChange = () => setHash(location.hash);
    addEventListener("hashchange", onChange);
    return () => removeEventListener("hashchange", onChange);
  }, []);
  return hash;
}

/** The href of a route: link("jobs", ns, name) -> "#/jobs/ns/name". */
export function link(...parts) {
  return `#/${parts.map((p) => encodeURIComponent(p)).join("/")}`;
}
