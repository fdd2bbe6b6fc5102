// The meal-plan page: `calendar_sync` for one user, read two ways side by side.
//
//   - OpenFeature: @openfeature/web-sdk with the OFREP web provider. The relay
//     evaluates; the provider follows the bulk reply's `eventStreams` (SSE with a
//     ticket) and refetches on each `refetchEvaluation`.
//   - @flagops/sdk: the relay's document stream, evaluated in the page.
//
// User and cohort come from the query string (?user=ana&cohort=internal). The relay's
// address and the browser token come from config.json, served by the demo app.
//
// Each path's <section> carries data-enabled, data-revision and data-changed-at (epoch
// ms, Date.now() when the value shown last changed), which tests and `make demo` read.

import { OpenFeature, ProviderEvents } from "@openfeature/web-sdk";
import { OFREPWebProvider } from "@openfeature/ofrep-web-provider";
import { FeatureFlags, bucket } from "@flagops/sdk";

const FLAG = "calendar_sync";

const query = new URLSearchParams(window.location.search);
const userId = query.get("user") ?? "guest";
const cohort = query.get("cohort") || null;

function show(pathId, { enabled, reason, stage, revision }) {
  const section = document.getElementById(pathId);
  const value = enabled === null ? "" : String(enabled);
  if (section.dataset.enabled !== value) {
    const now = Date.now();
    section.dataset.enabled = value;
    section.dataset.changedAt = String(now);
    section.querySelector(".changed").textContent = new Date(now).toISOString();
  }
  section.dataset.revision = revision ?? "";
  section.querySelector(".value").textContent =
    enabled === null ? "unknown" : enabled ? "on" : "off";
  section.querySelector(".reason").textContent = reason ?? "-";
  section.querySelector(".stage").textContent = stage ?? "-";
}

function problem(text) {
  const element = document.getElementById("problem");
  element.hidden = false;
  element.textContent = text;
}

async function startOpenFeature(baseUrl, token) {
  const provider = new OFREPWebProvider({
    baseUrl,
    headers: token ? [["Authorization", `Bearer ${token}`]] : [],
    // The relay names an SSE stream in `eventStreams`; the provider follows it, so a
    // change arrives as a push (no polling). No local cache: the page shows the relay.
    changeDetection: "sse",
    cacheMode: "disabled",
  });
  const client = OpenFeature.getClient();
  const render = () => {
    const details = client.getBooleanDetails(FLAG, false);
    const failed = details.errorCode !== undefined;
    show("openfeature", {
      enabled: failed ? null : details.value,
      reason: failed ? `${details.reason}: ${details.errorCode}` : details.reason,
      stage: details.flagMetadata?.stage,
      revision: details.flagMetadata?.revision,
    });
  };
  client.addHandler(ProviderEvents.Ready, render);
  client.addHandler(ProviderEvents.ConfigurationChanged, render);
  client.addHandler(ProviderEvents.Error, (event) => problem(`OpenFeature: ${event?.message ?? "error"}`));
  await OpenFeature.setContext({ targetingKey: userId, ...(cohort ? { cohort } : {}) });
  await OpenFeature.setProviderAndWait(provider);
  render();
}

async function startFlagops(baseUrl, token) {
  const flags = FeatureFlags.fromRelay(baseUrl, { token: token ?? undefined, minRetryMs: 250 });
  flags.setUserContext(userId, cohort);
  const render = () => {
    const detail = flags.isEnabledDetail(FLAG);
    show("flagops", {
      enabled: flags.revision === null ? null : detail.value,
      reason: detail.reason,
      stage: flags.get(FLAG)?.stage,
      revision: flags.revision,
    });
  };
  flags.onChange(render);
  flags.onError((event) => problem(`@flagops/sdk: ${event.message}`));
  if (await flags.ready()) render();
}

async function main() {
  document.getElementById("user").textContent = userId;
  document.getElementById("cohort").textContent = cohort ?? "none";
  document.getElementById("bucket").textContent = String(bucket(FLAG, userId));
  document.body.dataset.bucket = String(bucket(FLAG, userId));
  const response = await fetch("config.json", { cache: "no-store" });
  const config = await response.json();
  // The relay serves each namespace under /namespaces/<ns>; a base URL picks one.
  const baseUrl = `${config.relayUrl}/namespaces/${encodeURIComponent(config.namespace)}`;
  const results = await Promise.allSettled([
    startOpenFeature(baseUrl, config.token),
    startFlagops(baseUrl, config.token),
  ]);
  for (const result of results) {
    if (result.status === "rejected") problem(String(result.reason));
  }
  document.body.dataset.started = "true";
}

main().catch((error) => problem(String(error)));
