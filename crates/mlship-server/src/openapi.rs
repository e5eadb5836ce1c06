//! `/openapi.json`: an OpenAPI 3 description generated from the routes and each model's signature;
//! `/docs`: the same, as a page that needs no network (no scripts, no external assets).

use serde_json::{Value as Json, json};

use crate::AppState;
use mlship_model::DType;

fn column_schema(d: DType, nullable: bool) -> Json {
    let t = match d {
        DType::Float => "number",
        DType::Int => "integer",
        DType::Str => "string",
        DType::Bool => "boolean",
    };
    if nullable {
        json!({"type": [t, "null"]})
    } else {
        json!({"type": t})
    }
}

/// The OpenAPI document of this server and its models.
pub fn document(s: &AppState) -> Json {
    let mut schemas = serde_json::Map::new();
    let mut paths = serde_json::Map::new();
    let error_mlflow = json!({"description": "bad input, unknown model, body too large or wrong content type", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/MlflowError"}}}});
    let error_v2 = json!({"description": "bad input or unknown model", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}});
    schemas.insert("MlflowError".into(), json!({"type": "object", "properties": {"error_code": {"type": "string"}, "message": {"type": "string"}}, "required": ["error_code", "message"]}));
    schemas.insert("Error".into(), json!({"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}));
    for m in &s.models() {
        let sig = &m.model.signature;
        let record_name = format!("{}Record", m.name);
        // Each column's JSON type; a categorical column's values are the categories its
        // encoders know (another one is refused), so the document names them.
        let categories: std::collections::HashMap<String, Vec<String>> =
            m.model.categories().into_iter().collect();
        let column = |f: &mlship_model::Field| {
            let mut c = column_schema(f.dtype, f.nullable);
            if let Some(list) = categories.get(&f.name) {
                c["enum"] = list.iter().map(|v| json!(v)).collect();
            }
            c
        };
        let props: serde_json::Map<String, Json> = sig
            .inputs
            .iter()
            .map(|f| (f.name.clone(), column(f)))
            .collect();
        // A record may leave out a column that takes missing values (but not a categorical
        // one: its encoders know only their categories).
        let required: Vec<&str> = sig
            .inputs
            .iter()
            .filter(|f| !f.nullable || categories.contains_key(&f.name))
            .map(|f| f.name.as_str())
            .collect();
        schemas.insert(record_name.clone(), json!({"type": "object", "properties": props, "required": required, "additionalProperties": true}));
        let names: Vec<&str> = sig.inputs.iter().map(|f| f.name.as_str()).collect();
        let record = json!({"$ref": format!("#/components/schemas/{record_name}")});
        let rows = |items: Json| json!({"type": "array", "items": items, "minItems": 1});
        let n = sig.inputs.len();
        let split_row = json!({"type": "array", "prefixItems": sig.inputs.iter().map(column).collect::<Vec<_>>(), "minItems": n, "maxItems": n});
        let methods: &[&str] = if sig.task == mlship_model::Task::Classification {
            &["predict", "predict_proba"]
        } else {
            &["predict"]
        };
        let params = json!({"type": "object", "properties": {"predict_method": {"type": "string", "enum": methods}}, "additionalProperties": true});
        // The four request shapes MLflow's scoring server takes, exactly one key each.
        let shape = |key: &str, value: Json| json!({"type": "object", "properties": {key: value, "params": params.clone()}, "required": [key], "additionalProperties": false});
        let example: serde_json::Map<String, Json> = sig
            .inputs
            .iter()
            .map(|f| {
                let v = match categories.get(&f.name).and_then(|c| c.first()) {
                    Some(c) => json!(c),
                    None => match f.dtype {
                        DType::Str => json!("a"),
                        DType::Bool => json!(false),
                        _ => json!(0.0),
                    },
                };
                (f.name.clone(), v)
            })
            .collect();
        let body = json!({
            "required": true,
            "description": "JSON in one of MLflow's four shapes; `text/csv` with a header row is taken too",
            "content": {
                "application/json": {
                    "schema": {"oneOf": [
                        shape("dataframe_records", rows(record.clone())),
                        shape("dataframe_split", json!({"type": "object", "properties": {"columns": {"const": names}, "data": rows(split_row)}, "required": ["data"], "additionalProperties": false})),
                        shape("instances", rows(record.clone())),
                        shape("inputs", rows(record.clone())),
                    ]},
                    "example": {"dataframe_records": [example]}
                }
            }
        });
        let ok = json!({"description": "predictions", "content": {"application/json": {"schema": {"type": "object", "properties": {"predictions": {"type": "array"}, "probabilities": {"type": "array"}, "classes": {"type": "array"}, "outputs": {"type": "object", "description": "further named outputs (a PMML scorecard's reason codes), one array each"}}}}}});
        paths.insert(
            format!("/models/{}/invocations", m.name),
            json!({"post": {"summary": format!("Score rows with `{}` (MLflow protocol; {})", m.name, m.model.info.estimator), "parameters": [{"name": "probabilities", "in": "query", "schema": {"type": "boolean"}}], "requestBody": body, "responses": {"200": ok, "400": error_mlflow, "404": error_mlflow, "413": error_mlflow, "415": error_mlflow}}}),
        );
        paths.insert(
            format!("/v1/models/{}:predict", m.name),
            json!({"post": {"summary": format!("Score rows with `{}` (KServe V1)", m.name), "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "properties": {"instances": rows(record.clone())}, "required": ["instances"], "additionalProperties": false}}}}, "responses": {"200": {"description": "predictions", "content": {"application/json": {"schema": {"type": "object", "properties": {"predictions": {"type": "array"}}, "required": ["predictions"]}}}}, "400": error_v2}}}),
        );
        paths.insert(
            format!("/models/{}/form", m.name),
            json!({"get": {"summary": format!("The fields of `{}`'s \"try it\" form: each input's type, the categories its encoders know", m.name), "responses": {"200": {"description": "task, classes and fields", "content": {"application/json": {"schema": {"type": "object", "properties": {"task": {"type": "string"}, "classes": {"type": "array"}, "fields": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}, "type": {"type": "string"}, "nullable": {"type": "boolean"}, "categories": {"type": "array", "items": {"type": "string"}}, "example": {}}}}}}}}}, "404": error_mlflow}}}),
        );
        // One tensor per column, one row each: the shape the document can state exactly.
        let tensors: Vec<Json> = sig
            .inputs
            .iter()
            .map(|f| {
                let datatype = match f.dtype {
                    DType::Float => "FP64",
                    DType::Int => "INT64",
                    DType::Str => "BYTES",
                    DType::Bool => "BOOL",
                };
                json!({"type": "object", "properties": {"name": {"const": f.name}, "shape": {"const": [1]}, "datatype": {"const": datatype}, "data": {"type": "array", "items": column(f), "minItems": 1, "maxItems": 1}}, "required": ["name", "shape", "datatype", "data"], "additionalProperties": false})
            })
            .collect();
        paths.insert(
            format!("/v2/models/{}/infer", m.name),
            json!({"post": {"summary": format!("Score rows with `{}` (Open Inference Protocol): one tensor per column, or one [rows, {}] tensor", m.name, sig.inputs.len()), "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "properties": {"id": {"type": "string"}, "inputs": {"type": "array", "prefixItems": tensors, "minItems": n, "maxItems": n}}, "required": ["inputs"], "additionalProperties": false}}}}, "responses": {"200": {"description": "outputs `predictions` (and `probabilities`)", "content": {"application/json": {"schema": {"type": "object", "properties": {"outputs": {"type": "array"}}, "required": ["outputs"]}}}}, "400": error_v2}}}),
        );
    }
    for (p, summary) in [
        ("/ping", "Liveness (MLflow)"),
        ("/health", "Liveness (MLflow)"),
        ("/metrics", "Prometheus metrics"),
        ("/v2/health/live", "Liveness (Open Inference Protocol)"),
        ("/v2/health/ready", "Readiness (Open Inference Protocol)"),
        ("/v1/models", "Served models (KServe V1)"),
    ] {
        paths.insert(
            p.into(),
            json!({"get": {"summary": summary, "responses": {"200": {"description": "ok"}}}}),
        );
    }
    json!({
        "openapi": "3.1.0",
        "info": {"title": "mlship", "version": env!("CARGO_PKG_VERSION"), "description": "Model scoring: MLflow, KServe V1 and the Open Inference Protocol on one port."},
        "paths": paths,
        "components": {"schemas": schemas},
    })
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The documentation page: every route and every model's columns, rendered on the server.
pub fn page(s: &AppState) -> String {
    let doc = document(s);
    let mut h = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>mlship API</title><style>body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}code,pre{background:#f4f4f4;padding:.1em .3em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2em .6em;text-align:left}h2{margin-top:2em}</style></head><body>",
    );
    h.push_str("<h1>mlship API</h1><p>The machine-readable description is at <a href=\"/openapi.json\">/openapi.json</a>.</p><h2>Routes</h2><table><tr><th>method</th><th>path</th><th>what</th></tr>");
    if let Some(paths) = doc["paths"].as_object() {
        for (p, ops) in paths {
            if let Some(ops) = ops.as_object() {
                for (method, op) in ops {
                    h.push_str(&format!(
                        "<tr><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
                        method.to_uppercase(),
                        esc(p),
                        esc(op["summary"].as_str().unwrap_or(""))
                    ));
                }
            }
        }
    }
    h.push_str("</table>");
    for m in &s.models() {
        // Named by name and version only: where the file lives on the host is the log's business.
        h.push_str(&format!("<h2>Model <code>{}</code></h2><p>{} &middot; {} &middot; version {}</p><table><tr><th>column</th><th>type</th><th>missing allowed</th></tr>", esc(&m.name), esc(&m.model.info.estimator), m.model.signature.task.name(), esc(&m.version_label)));
        for f in &m.model.signature.inputs {
            h.push_str(&format!(
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                esc(&f.name),
                f.dtype.name(),
                if f.nullable { "yes" } else { "no" }
            ));
        }
        h.push_str("</table>");
        let example = &doc["paths"][format!("/models/{}/invocations", m.name)]["post"]["requestBody"]
            ["content"]["application/json"]["example"];
        h.push_str(&format!("<p>Example:</p><pre>curl -X POST http://HOST/models/{}/invocations -H 'Content-Type: application/json' -d '{}'</pre>", esc(&m.name), esc(&example.to_string())));
    }
    h.push_str("</body></html>");
    h
}
