//! The API's route table as a pure function, so it can be tested natively and checked against the
//! OpenAPI document (`openapi.rs`).

use leadheat_edge::http::Problem;
use worker::Method;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Health,
    OpenApi,
    AuthConfig,
    AuthToken,
    AuthSession,
    Track { site_key: String },
    CreateLead,
    ListLeads,
    BulkLeads,
    ListMembers,
    GetLead { id: String },
    UpdateLead { id: String },
    DeleteLead { id: String },
    MergeLead { id: String },
    ExportLead { id: String },
    LeadHeat { id: String },
    CreateInteraction { id: String },
    Timeline { id: String },
    MoveLead { id: String },
    Feed,
    Changes,
    Live,
    ListCustomFields,
    CreateCustomField,
    UpdateCustomField { id: String },
    DeleteCustomField { id: String },
    ListStages,
    CreateStage,
    UpdateStage { id: String },
    DeleteStage { id: String },
    ReorderStages,
    Board,
    Dashboard,
    GetScoring,
    PutScoring,
    PreviewScoring,
    Recalculate,
    RecalculateStatus,
    ListIntegrations,
    PutIntegration { platform: String },
    DeleteIntegration { platform: String },
    ReplayDead { platform: String },
    StartConnect { platform: String },
    ConnectCallback { platform: String },
    GetPendingConnection { platform: String, id: String },
    CompletePendingConnection { platform: String, id: String },
    TrackingSettings,
    RotateSiteKey,
    DemoDataStatus,
    LoadDemoData,
}

/// Every (method, path template) the API serves; the OpenAPI document must list exactly these.
pub const ROUTE_TEMPLATES: &[(&str, &str)] = &[
    ("GET", "/v1/health"),
    ("GET", "/v1/openapi.json"),
    ("GET", "/v1/auth/config"),
    ("POST", "/v1/auth/token"),
    ("GET", "/v1/auth/session"),
    ("POST", "/track/{site_key}"),
    ("POST", "/v1/leads"),
    ("GET", "/v1/leads"),
    ("POST", "/v1/leads/bulk"),
    ("GET", "/v1/leads/{id}"),
    ("PATCH", "/v1/leads/{id}"),
    ("DELETE", "/v1/leads/{id}"),
    ("POST", "/v1/leads/{id}/merge"),
    ("GET", "/v1/leads/{id}/export"),
    ("GET", "/v1/leads/{id}/heat"),
    ("POST", "/v1/leads/{id}/interactions"),
    ("GET", "/v1/leads/{id}/timeline"),
    ("POST", "/v1/leads/{id}/move"),
    ("GET", "/v1/feed"),
    ("GET", "/v1/changes"),
    ("GET", "/v1/live"),
    ("GET", "/v1/custom-fields"),
    ("POST", "/v1/custom-fields"),
    ("PATCH", "/v1/custom-fields/{id}"),
    ("DELETE", "/v1/custom-fields/{id}"),
    ("GET", "/v1/pipeline/stages"),
    ("POST", "/v1/pipeline/stages"),
    ("PATCH", "/v1/pipeline/stages/{id}"),
    ("DELETE", "/v1/pipeline/stages/{id}"),
    ("PUT", "/v1/pipeline/stages/order"),
    ("GET", "/v1/pipeline/board"),
    ("GET", "/v1/dashboard"),
    ("GET", "/v1/scoring"),
    ("PUT", "/v1/scoring"),
    ("POST", "/v1/scoring/preview"),
    ("POST", "/v1/scoring/recalculate"),
    ("GET", "/v1/scoring/recalculate"),
    ("GET", "/v1/integrations"),
    ("PUT", "/v1/integrations/{platform}"),
    ("DELETE", "/v1/integrations/{platform}"),
    ("POST", "/v1/integrations/{platform}/replay"),
    ("POST", "/v1/integrations/{platform}/connect"),
    ("GET", "/v1/integrations/{platform}/callback"),
    ("GET", "/v1/integrations/{platform}/pending/{id}"),
    ("POST", "/v1/integrations/{platform}/pending/{id}"),
    ("GET", "/v1/tracking"),
    ("POST", "/v1/tracking/rotate"),
    ("GET", "/v1/members"),
    ("GET", "/v1/demo-data"),
    ("POST", "/v1/demo-data"),
];

/// Resolves a request to its route: 404 for an unknown path, 405 for a known path with another
/// method.
pub fn resolve(method: &Method, path: &str) -> Result<Route, Problem> {
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let id = |s: &str| s.to_string();
    use Method::*;
    let route = match (method, segments.as_slice()) {
        (Get, ["v1", "health"]) => Route::Health,
        (Get, ["v1", "openapi.json"]) => Route::OpenApi,
        (Get, ["v1", "auth", "config"]) => Route::AuthConfig,
        (Post, ["v1", "auth", "token"]) => Route::AuthToken,
        (Get, ["v1", "auth", "session"]) => Route::AuthSession,
        (Post, ["track", key]) => Route::Track { site_key: id(key) },
        (Post, ["v1", "leads"]) => Route::CreateLead,
        (Get, ["v1", "leads"]) => Route::ListLeads,
        (Post, ["v1", "leads", "bulk"]) => Route::BulkLeads,
        (Get, ["v1", "leads", lead]) => Route::GetLead { id: id(lead) },
        (Patch, ["v1", "leads", lead]) => Route::UpdateLead { id: id(lead) },
        (Delete, ["v1", "leads", lead]) => Route::DeleteLead { id: id(lead) },
        (Post, ["v1", "leads", lead, "merge"]) => Route::MergeLead { id: id(lead) },
        (Get, ["v1", "leads", lead, "export"]) => Route::ExportLead { id: id(lead) },
        (Get, ["v1", "leads", lead, "heat"]) => Route::LeadHeat { id: id(lead) },
        (Post, ["v1", "leads", lead, "interactions"]) => Route::CreateInteraction { id: id(lead) },
        (Get, ["v1", "leads", lead, "timeline"]) => Route::Timeline { id: id(lead) },
        (Post, ["v1", "leads", lead, "move"]) => Route::MoveLead { id: id(lead) },
        (Get, ["v1", "feed"]) => Route::Feed,
        (Get, ["v1", "changes"]) => Route::Changes,
        (Get, ["v1", "live"]) => Route::Live,
        (Get, ["v1", "custom-fields"]) => Route::ListCustomFields,
        (Post, ["v1", "custom-fields"]) => Route::CreateCustomField,
        (Patch, ["v1", "custom-fields", field]) => Route::UpdateCustomField { id: id(field) },
        (Delete, ["v1", "custom-fields", field]) => Route::DeleteCustomField { id: id(field) },
        (Get, ["v1", "pipeline", "stages"]) => Route::ListStages,
        (Post, ["v1", "pipeline", "stages"]) => Route::CreateStage,
        (Put, ["v1", "pipeline", "stages", "order"]) => Route::ReorderStages,
        (Patch, ["v1", "pipeline", "stages", stage]) => Route::UpdateStage { id: id(stage) },
        (Delete, ["v1", "pipeline", "stages", stage]) => Route::DeleteStage { id: id(stage) },
        (Get, ["v1", "pipeline", "board"]) => Route::Board,
        (Get, ["v1", "dashboard"]) => Route::Dashboard,
        (Get, ["v1", "scoring"]) => Route::GetScoring,
        (Put, ["v1", "scoring"]) => Route::PutScoring,
        (Post, ["v1", "scoring", "preview"]) => Route::PreviewScoring,
        (Post, ["v1", "scoring", "recalculate"]) => Route::Recalculate,
        (Get, ["v1", "scoring", "recalculate"]) => Route::RecalculateStatus,
        (Get, ["v1", "integrations"]) => Route::ListIntegrations,
        (Put, ["v1", "integrations", platform]) => Route::PutIntegration {
            platform: id(platform),
        },
        (Delete, ["v1", "integrations", platform]) => Route::DeleteIntegration {
            platform: id(platform),
        },
        (Post, ["v1", "integrations", platform, "replay"]) => Route::ReplayDead {
            platform: id(platform),
        },
        (Post, ["v1", "integrations", platform, "connect"]) => Route::StartConnect {
            platform: id(platform),
        },
        (Get, ["v1", "integrations", platform, "callback"]) => Route::ConnectCallback {
            platform: id(platform),
        },
        (Get, ["v1", "integrations", platform, "pending", pending]) => {
            Route::GetPendingConnection {
                platform: id(platform),
                id: id(pending),
            }
        }
        (Post, ["v1", "integrations", platform, "pending", pending]) => {
            Route::CompletePendingConnection {
                platform: id(platform),
                id: id(pending),
            }
        }
        (Get, ["v1", "tracking"]) => Route::TrackingSettings,
        (Post, ["v1", "tracking", "rotate"]) => Route::RotateSiteKey,
        (Get, ["v1", "members"]) => Route::ListMembers,
        (Get, ["v1", "demo-data"]) => Route::DemoDataStatus,
        (Post, ["v1", "demo-data"]) => Route::LoadDemoData,
        _ => return Err(unmatched(path)),
    };
    Ok(route)
}

/// 405 when some other method serves the path, else 404.
fn unmatched(path: &str) -> Problem {
    let served_with_other_method = ROUTE_TEMPLATES
        .iter()
        .any(|(_, template)| template_matches(template, path));
    if served_with_other_method {
        Problem::method_not_allowed(format!("{path} does not accept this method"))
    } else {
        Problem::not_found(format!("no route {path}"))
    }
}

/// Whether a concrete path fits a template such as `/v1/leads/{id}`.
pub fn template_matches(template: &str, path: &str) -> bool {
    let template: Vec<&str> = template.split('/').collect();
    let path: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    template.len() == path.len()
        && template
            .iter()
            .zip(&path)
            .all(|(t, p)| (t.starts_with('{') && !p.is_empty()) || t == p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn method(name: &str) -> Method {
        Method::from(name.to_string())
    }

    #[test]
    fn every_template_resolves_with_its_method() {
        for (verb, template) in ROUTE_TEMPLATES {
            let path = template
                .replace("{id}", "lead_01")
                .replace("{platform}", "facebook")
                .replace("{site_key}", "site_x");
            assert!(resolve(&method(verb), &path).is_ok(), "{verb} {path}");
        }
    }

    #[test]
    fn ids_are_taken_from_the_path() {
        assert_eq!(
            resolve(&Method::Get, "/v1/leads/lead_42/timeline").unwrap(),
            Route::Timeline {
                id: "lead_42".into()
            }
        );
        assert_eq!(
            resolve(&Method::Put, "/v1/pipeline/stages/order").unwrap(),
            Route::ReorderStages
        );
    }

    #[test]
    fn unknown_paths_are_404_and_wrong_methods_405() {
        assert_eq!(
            resolve(&Method::Get, "/v1/nothing").unwrap_err().status,
            404
        );
        assert_eq!(resolve(&Method::Put, "/v1/leads").unwrap_err().status, 405);
        assert_eq!(
            resolve(&Method::Get, "/v1/leads/x/merge")
                .unwrap_err()
                .status,
            405
        );
    }
}
