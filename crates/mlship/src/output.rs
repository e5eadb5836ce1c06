//! Predictions printed as JSON (`{"predictions": …}`) or CSV.

use mlship_model::{Label, Matrix, Output, Predictions, Scores, Signature};
use serde_json::{Value as Json, json};

fn num(x: f64) -> Json {
    serde_json::Number::from_f64(x).map_or(Json::Null, Json::Number)
}

/// A model's signature as the registry records it: typed inputs, whether they are named, the
/// task and the classes.
pub fn signature(sig: &Signature) -> Json {
    json!({
        "inputs": sig.inputs.iter().map(|f| json!({"name": f.name, "type": f.dtype.name(), "nullable": f.nullable})).collect::<Vec<_>>(),
        "named": sig.named,
        "task": sig.task.name(),
        "classes": sig.classes.as_ref().map(|c| c.iter().map(label).collect::<Vec<_>>()),
    })
}

pub fn label(l: &Label) -> Json {
    match l {
        Label::Int(i) => json!(i),
        Label::Float(f) => num(*f),
        Label::Str(s) => json!(s),
        Label::Bool(b) => json!(b),
    }
}

fn matrix(m: &Matrix) -> Json {
    Json::Array(
        m.iter_rows()
            .map(|r| Json::Array(r.iter().map(|x| num(*x)).collect()))
            .collect(),
    )
}

/// The JSON document of `mlship predict`.
pub fn to_json(o: &Output) -> Json {
    let mut doc = serde_json::Map::new();
    let preds = match &o.predictions {
        Predictions::Labels(v) => v.iter().map(label).collect(),
        Predictions::Classes(v) => (0..v.len())
            .map(|i| o.label(i).map_or(Json::Null, label))
            .collect(),
        Predictions::Values(v) => v.iter().map(|x| num(*x)).collect(),
        Predictions::Clusters(v) => v.iter().map(|x| json!(x)).collect(),
    };
    doc.insert("predictions".into(), Json::Array(preds));
    if let Some(p) = &o.probabilities {
        doc.insert("probabilities".into(), matrix(p));
    }
    if let Some(c) = &o.classes {
        doc.insert("classes".into(), Json::Array(c.iter().map(label).collect()));
    }
    if let Some(d) = &o.decision_function {
        doc.insert(
            "decision_function".into(),
            match d {
                Scores::Vector(v) => Json::Array(v.iter().map(|x| num(*x)).collect()),
                Scores::Matrix(m) => matrix(m),
            },
        );
    }
    if let Some(d) = &o.distances {
        doc.insert("distances".into(), matrix(d));
    }
    if !o.extra.is_empty() {
        doc.insert("outputs".into(), extra(o));
    }
    Json::Object(doc)
}

/// The model's further named outputs (a PMML scorecard's reason codes): `{name: [value|null]}`.
fn extra(o: &Output) -> Json {
    Json::Object(
        o.extra
            .iter()
            .map(|(name, v)| (name.clone(), json!(v)))
            .collect(),
    )
}

/// CSV: a `prediction` column, then one `probability(<class>)` column per class, then the
/// model's further named outputs.
pub fn to_csv(o: &Output) -> anyhow::Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["prediction".to_string()];
    if let (Some(_), Some(c)) = (&o.probabilities, &o.classes) {
        header.extend(c.iter().map(|l| format!("probability({l})")));
    }
    header.extend(o.extra.iter().map(|(name, _)| name.clone()));
    w.write_record(&header)?;
    for i in 0..o.predictions.len() {
        let mut row = vec![match &o.predictions {
            Predictions::Labels(v) => v[i].to_string(),
            Predictions::Classes(_) => o.label(i).map_or_else(String::new, ToString::to_string),
            Predictions::Values(v) => format!("{:?}", v[i]),
            Predictions::Clusters(v) => v[i].to_string(),
        }];
        if let (Some(p), Some(_)) = (&o.probabilities, &o.classes) {
            row.extend(p.row(i).iter().map(|x| format!("{x:?}")));
        }
        row.extend(
            o.extra
                .iter()
                .map(|(_, v)| v[i].clone().unwrap_or_default()),
        );
        w.write_record(&row)?;
    }
    Ok(String::from_utf8(w.into_inner()?)?)
}
