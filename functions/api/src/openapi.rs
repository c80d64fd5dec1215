//! `GET /v1/openapi.json` (no auth): the hand-written OpenAPI 3.1 document, compiled in.
//!
//! The native tests below hold the document to the implementation: its (method, path) pairs are
//! exactly `routes::ROUTE_TEMPLATES`, every `$ref` resolves, and every path parameter is declared.

use leadheat_edge::http::Problem;
use worker::Response;

/// The document, as served.
pub const DOCUMENT: &str = include_str!("../openapi.json");

pub fn serve() -> Result<Response, Problem> {
    let mut response = Response::from_bytes(DOCUMENT.as_bytes().to_vec())?;
    response
        .headers_mut()
        .set("Content-Type", "application/json")?;
    response
        .headers_mut()
        .set("Cache-Control", "public, max-age=300")?;
    Ok(response)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::DOCUMENT;
    use crate::routes::ROUTE_TEMPLATES;

    const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

    fn document() -> Value {
        serde_json::from_str(DOCUMENT).expect("openapi.json is valid JSON")
    }

    #[test]
    fn it_is_openapi_3_1() {
        let doc = document();
        let version = doc["openapi"].as_str().expect("an openapi field");
        assert!(version.starts_with("3.1."), "{version}");
        assert!(doc["info"]["title"].is_string());
        assert!(doc["info"]["version"].is_string());
        assert_eq!(
            doc["components"]["securitySchemes"]["bearerAuth"]["scheme"],
            "bearer"
        );
    }

    #[test]
    fn operations_are_exactly_the_route_table() {
        let doc = document();
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, _) in item.as_object().expect("path item") {
                assert!(
                    METHODS.contains(&method.as_str()),
                    "unexpected key {method} in {path}"
                );
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
        let implemented: BTreeSet<(String, String)> = ROUTE_TEMPLATES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        let missing: Vec<_> = implemented.difference(&documented).collect();
        let extra: Vec<_> = documented.difference(&implemented).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "undocumented: {missing:?}; not implemented: {extra:?}"
        );
    }

    #[test]
    fn every_operation_has_responses_and_its_path_parameters() {
        let doc = document();
        let parameters = &doc["components"]["parameters"];
        for (path, item) in doc["paths"].as_object().unwrap() {
            let placeholders: BTreeSet<String> = path
                .split('/')
                .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .map(str::to_string)
                .collect();
            for (method, op) in item.as_object().unwrap() {
                assert!(
                    op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                    "{method} {path} has no responses"
                );
                assert!(
                    op["operationId"].is_string(),
                    "{method} {path} has no operationId"
                );
                let declared: BTreeSet<String> = op["parameters"]
                    .as_array()
                    .map(|ps| {
                        ps.iter()
                            .map(|p| match p["$ref"].as_str() {
                                Some(r) => {
                                    &parameters[r.trim_start_matches("#/components/parameters/")]
                                }
                                None => p,
                            })
                            .filter(|p| p["in"] == "path")
                            .map(|p| p["name"].as_str().unwrap_or_default().to_string())
                            .collect()
                    })
                    .unwrap_or_default();
                assert_eq!(declared, placeholders, "{method} {path}");
            }
        }
    }

    fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                for (key, v) in map {
                    match (key.as_str(), v) {
                        ("$ref", Value::String(r)) => out.push(r),
                        _ => refs(v, out),
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    #[test]
    fn every_reference_resolves() {
        let doc = document();
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(found.len() > 50);
        for reference in found {
            let pointer = reference.strip_prefix('#').expect("local references only");
            assert!(doc.pointer(pointer).is_some(), "dangling {reference}");
        }
    }

    #[test]
    fn the_shapes_outside_tests_rely_on_are_described() {
        let doc = document();
        let lead = &doc["components"]["schemas"]["Lead"]["required"];
        for field in [
            "id",
            "heat_score",
            "heat_level",
            "position",
            "version",
            "social_profiles",
        ] {
            assert!(
                lead.as_array().unwrap().iter().any(|f| f == field),
                "Lead.{field}"
            );
        }
        let interaction = &doc["components"]["schemas"]["Interaction"]["required"];
        for field in [
            "lead_id",
            "type",
            "platform",
            "captured_by",
            "points",
            "external_id",
        ] {
            assert!(
                interaction.as_array().unwrap().iter().any(|f| f == field),
                "Interaction.{field}"
            );
        }
        // The UI's engagement chart draws from the per-day series.
        let engagement =
            &doc["components"]["schemas"]["Dashboard"]["properties"]["social_engagement"];
        assert!(
            engagement["required"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f == "by_day"),
            "Dashboard.social_engagement.by_day"
        );
        assert_eq!(
            engagement["properties"]["by_day"]["items"]["required"],
            serde_json::json!(["day", "facebook", "instagram", "linkedin", "total"])
        );
        assert!(doc["paths"]["/v1/leads"]["get"].is_object());
        assert_eq!(
            doc["paths"]["/v1/health"]["get"]["security"],
            serde_json::json!([])
        );
    }
}
