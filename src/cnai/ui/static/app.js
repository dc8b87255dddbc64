// The dashboard's shell: login state, the header, and the table of routes.
//
// To add a page: write pages/NAME.js exporting a component that takes {params,
// principal}, and add it to ROUTES (nav: true puts it in the header).

import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { auth, setUnauthorizedHandler, whoami } from "./api.js";
import { ErrorBox, html } from "./components.js";
import { ExperimentDetail } from "./pages/experiment.js";
import { ExperimentsList } from "./pages/experiments.js";
import { JobDetail } from "./pages/job.js";
import { JobsList } from "./pages/jobs.js";
import { TrainJobDetail, TrainJobsList } from "./pages/trainjobs.js";
import { Login } from "./pages/login.js";
import { ModelDetail } from "./pages/model.js";
import { ModelsList } from "./pages/models.js";
import { Overview } from "./pages/overview.js";
import { RunDetail } from "./pages/run.js";
import { RunsList } from "./pages/runs.js";
import { RunsCompare } from "./pages/runs_compare.js";
import { ServiceDetail } from "./pages/service.js";
import { ServicesList } from "./pages/services.js";
import { match, useHash } from "./router.js";

export const ROUTES = [
  { path: "/", page: Overview, title: "Overview", nav: true },
  { path: "/jobs", page: JobsList, title: "Jobs", nav: true },
  { path: "/jobs/:namespace/:name", page: JobDetail, title: "Job" },
  { path: "/trainjobs", page: TrainJobsList, title: "Training", nav: true },
  { path: "/trainjobs/:namespace/:name", page: TrainJobDetail, title: "TrainJob" },
  { path: "/experiments", page: ExperimentsList, title: "Experiments", nav: true },
  { path: "/experiments/:namespace/:name", page: ExperimentDetail, title: "Experiment" },
  { path: "/models", page: ModelsList, title: "Models", nav: true },
  { path: "/models/:namespace/:name", page: ModelDetail, title: "Model" },
  { path: "/services", page: ServicesList, title: "Services", nav: true },
  { path: "/services/:namespace/:name", page: ServiceDetail, title: "Inference service" },
  { path: "/runs", page: RunsList, title: "Runs", nav: true },
  { path: "/runs/:namespace", page: RunsList, title: "Runs" },
  { path: "/runs/:namespace/compare", page: RunsCompare, title: "Compare runs" }, // before /runs/:namespace/:id
  { path: "/runs/:namespace/:id", page: RunDetail, title: "Run" },
];

function NotFound() {
  return html`<div class="page"><div class="error" role="alert">No such page: ${location.hash}</div>
    <p><a href="#/">Overview</a></p></div>`;
}

function identity(principal) {
  const scope = principal.admin ? "admin" : `namespace ${principal.namespace}`;
  return `token ${principal.tokenId} · ${scope}`;
}

function Header({ principal, current, onLogout }) {
  return html`<header class="top">
    <a class="brand" href="#/">cnai</a>
    <nav>
      ${ROUTES.filter((r) => r.nav).map(
        (r) => html`<a href=${`#${r.path}`} class=${current === r ? "active" : ""} data-nav=${r.title}>${r.title}</a>`,
      )}
    </nav>
    <span class="who" id="identity">${identity(principal)}</span>
    <button id="logout" type="button" onClick=${onLogout}>Log out</button>
  </header>`;
}

function App() {
  // undefined: checking a stored token; null: signed out; else whoami's answer
  const [principal, setPrincipal] = useState(auth.token() ? undefined : null);
  const [notice, setNotice] = useState("");
  const [startError, setStartError] = useState(null);
  const hash = useHash();

  const logout = (message = "") => {
    auth.clear();
    setNotice(message);
    setPrincipal(null);
  };
  useEffect(() => {
    setUnauthorizedHandler((err) => logout(`Signed out: the API refused the token (${err.message}).`));
    const token = auth.token();
    if (!token) return;
    whoami(token)
      .then(setPrincipal)
      .catch((err) => (err.status === 401 ? logout(`Signed out: ${err.message}.`) : setStartError(err)));
  }, []);

  if (startError) return html`<main class="page"><${ErrorBox} error=${startError} /></main>`;
  if (principal === undefined) return html`<main class="page muted">Loading…</main>`;
  if (principal === null) {
    return html`<${Login} notice=${notice} onLogin=${(p) => { setNotice(""); setPrincipal(p); }} />`;
  }
  const found = match(ROUTES, hash);
  const Page = found ? found.route.page : NotFound;
  document.title = found ? `${found.route.title} · cnai` : "cnai";
  return html`<${Header} principal=${principal} current=${found && found.route} onLogout=${() => logout()} />
    <main><${Page} key=${hash} params=${found ? found.params : {}} principal=${principal} /></main>`;
}

render(html`<${App} />`, document.getElementById("app"));
