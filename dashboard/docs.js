/**
 * @module dashboard/docs — the API docs page (/docs): renders the api's own /openapi.json, so
 * the page can never disagree with the routes (no hand-written copy). Every operation with its
 * parameters, request body and responses; schemas by name, their $refs linked.
 */
import { h } from "./views.js";

const $ = (id) => document.getElementById(id);
const METHODS = ["get", "post", "put", "patch", "delete"];

/** The api base: ?api=, the dashboard's saved setting, else this origin's. */
function apiBase() {
  const fromUrl = new URLSearchParams(location.search).get("api");
  return (fromUrl ?? localStorage.getItem("darkroom.apiBase") ??
    `${location.origin}/functions/v1/api`).replace(/\/+$/, "");
}

/** "#/components/schemas/Task" -> "Task". */
const refName = (ref) => ref.split("/").at(-1);

/** A schema as indented text, with each $ref a link to its schema. */
function schemaView(schema) {
  const pre = h("pre", { class: "schema" });
  const write = (value, indent) => {
    if (value && typeof value === "object" && typeof value.$ref === "string") {
      const name = refName(value.$ref);
      pre.append(h("a", { href: `#schema-${name}` }, name));
      return;
    }
    if (Array.isArray(value)) {
      pre.append("[\n");
      value.forEach((v, i) => {
        pre.append(" ".repeat(indent + 2));
        write(v, indent + 2);
        pre.append(i < value.length - 1 ? ",\n" : "\n");
      });
      pre.append(" ".repeat(indent) + "]");
      return;
    }
    if (value && typeof value === "object") {
      const entries = Object.entries(value);
      pre.append("{\n");
      entries.forEach(([k, v], i) => {
        pre.append(`${" ".repeat(indent + 2)}${k}: `);
        write(v, indent + 2);
        pre.append(i < entries.length - 1 ? ",\n" : "\n");
      });
      pre.append(" ".repeat(indent) + "}");
      return;
    }
    pre.append(JSON.stringify(value));
  };
  write(schema, 0);
  return pre;
}

function jsonSchemaOf(content) {
  return content?.["application/json"]?.schema ?? null;
}

function operationView(path, method, op) {
  const id = `op-${method}-${path.replace(/[^a-zA-Z0-9]+/g, "-")}`;
  const params = op.parameters ?? [];
  const body = jsonSchemaOf(op.requestBody?.content);
  return h(
    "section",
    { class: "op", id, dataset: { method, path } },
    h("h3", {}, h("span", { class: "method", dataset: { method } }, method), " ", path),
    op.summary ? h("p", {}, op.summary) : null,
    op.description ? h("p", { class: "muted" }, op.description) : null,
    params.length
      ? h(
        "table",
        {},
        h(
          "thead",
          {},
          h("tr", {}, ["Parameter", "In", "Required", "Type", "About"].map((t) => h("th", {}, t))),
        ),
        h(
          "tbody",
          {},
          params.map((p) =>
            h(
              "tr",
              {},
              h("td", {}, p.name),
              h("td", {}, p.in),
              h("td", {}, p.required ? "yes" : "no"),
              h("td", {}, p.schema?.type ?? (p.schema?.$ref ? refName(p.schema.$ref) : "")),
              h("td", {}, p.description ?? p.schema?.description ?? ""),
            )
          ),
        ),
      )
      : null,
    body ? [h("h4", {}, "Request body (application/json)"), schemaView(body)] : null,
    h("h4", {}, "Responses"),
    Object.entries(op.responses ?? {}).map(([code, r]) => {
      const schema = jsonSchemaOf(r.content);
      return h(
        "div",
        { class: "response", dataset: { status: code } },
        h("strong", {}, code),
        ` ${r.description ?? ""}`,
        schema ? schemaView(schema) : null,
      );
    }),
  );
}

async function main() {
  const url = `${apiBase()}/openapi.json`;
  $("doc-source").href = url;
  let doc;
  try {
    const res = await fetch(url, { cache: "no-store" });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    doc = await res.json();
  } catch (err) {
    $("doc-state").textContent = `Cannot load ${url}: ${err.message}`;
    $("doc-state").dataset.state = "error";
    return;
  }
  document.title = doc.info?.title ?? "API";
  $("doc-title").textContent = doc.info?.title ?? "API";
  $("doc-version").textContent = `v${doc.info?.version ?? "?"} · OpenAPI ${doc.openapi}`;
  $("doc-description").textContent = [
    doc.info?.description,
    doc.servers?.length ? `Base: ${doc.servers.map((s) => s.url).join(", ")}` : "",
  ].filter(Boolean).join(". ");
  const ops = [];
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    for (const method of METHODS) if (item[method]) ops.push([path, method, item[method]]);
  }
  $("doc-nav").replaceChildren(
    ...ops.map(([path, method]) =>
      h(
        "a",
        { href: `#op-${method}-${path.replace(/[^a-zA-Z0-9]+/g, "-")}` },
        `${method.toUpperCase()} ${path}`,
      )
    ),
    h("a", { href: "#schemas" }, "Schemas"),
  );
  $("doc-operations").replaceChildren(...ops.map(([p, m, op]) => operationView(p, m, op)));
  $("doc-schemas").replaceChildren(
    ...Object.entries(doc.components?.schemas ?? {}).map(([name, schema]) =>
      h("section", { class: "op", id: `schema-${name}` }, h("h3", {}, name), schemaView(schema))
    ),
  );
  $("doc-state").textContent = `${ops.length} operations`;
  $("doc-state").dataset.state = "ok";
}

main();
