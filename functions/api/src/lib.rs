//! The lead API worker: `/v1/*` for the sales UI and `/track/*` for the company website.
//!
//! Routing is a pure function ([`routes::resolve`]) so it is tested natively and checked against
//! the OpenAPI document; this file only authenticates, applies the cross-cutting conventions
//! (CORS, idempotency, problem+json) and dispatches.

mod changes;
mod connect;
mod context;
mod custom_fields;
mod dashboard;
mod demo;
mod idempotency;
mod integrations;
mod interactions;
mod leads;
mod live;
mod members;
mod openapi;
mod pipeline;
mod rate_limit;
mod request;
mod rescore;
mod routes;
mod scoring;
mod sign_in;
mod tracking;

use context::Ctx;
use leadheat_domain::live::ChangeSource;
use leadheat_edge::db;
use leadheat_edge::http::{self, Problem};
use request::ApiRequest;
use routes::Route;
use worker::{event, Context, Env, Method, Request, Response, Result};

#[event(fetch)]
pub async fn fetch(req: Request, env: Env, worker_ctx: Context) -> Result<Response> {
    let path = req.path();
    if path == "/app" || path.starts_with("/app/") {
        return ui_assets(req, &env).await;
    }
    let server_timing =
        leadheat_edge::config::optional(&env, http::SERVER_TIMING_VAR).as_deref() == Some("on");
    // One invocation: its D1 queries are counted, and limited, from zero.
    let invocation = db::invocation(serve(req, env, &worker_ctx));
    let usage = invocation.usage();
    let response = http::respond(invocation.await)?;
    if response.status_code() == 101 {
        // An accepted WebSocket: CORS does not apply, and its headers are the hub's.
        return Ok(response);
    }
    http::add_cors(response.headers())?;
    if server_timing {
        http::add_server_timing(response.headers(), &usage)?;
    }
    Ok(response)
}

/// The sales UI (`ui/`, wrangler `[assets]`, single-page-application fallback). In production the
/// asset router answers `/app/*` before the worker runs; the worker sees such a path only when no
/// file matched, or locally, where the runtime calls the worker directly. Either way the assets
/// binding answers.
async fn ui_assets(req: Request, env: &Env) -> Result<Response> {
    match env.assets("ASSETS") {
        Ok(assets) => assets.fetch_request(req).await,
        Err(_) => Problem::not_found("the UI is not configured: wrangler [assets] binding ASSETS")
            .into_response(),
    }
}

async fn serve(
    req: Request,
    env: Env,
    worker_ctx: &Context,
) -> std::result::Result<Response, Problem> {
    if req.method() == Method::Options {
        // CORS preflight: the headers are added to every response in `fetch`.
        return http::no_content();
    }
    let req = ApiRequest::read(req).await?;
    let route = routes::resolve(&req.method, &req.path)?;
    match route {
        Route::Health => return Ok(http::health()?),
        Route::OpenApi => return openapi::serve(),
        Route::AuthConfig => return sign_in::config(&env).await,
        Route::AuthToken => return sign_in::token(&req, &env).await,
        Route::Track { ref site_key } => {
            return tracking::track(&req, &env, worker_ctx, site_key).await
        }
        Route::Live => return live::connect(&req, env).await,
        // The browser comes back from the platform without a bearer; the signed state says whose.
        Route::ConnectCallback { ref platform } => {
            return connect::callback(&req, env, platform).await
        }
        _ => {}
    }
    let ctx = Ctx::authenticate(&req, env).await?;
    members::record_seen(&req, &ctx).await;
    let response = match (req.method == Method::Post, req.header("Idempotency-Key")) {
        (true, Some(key)) => {
            idempotency::guarded(&req, &ctx, &key, dispatch(route.clone(), &req, &ctx)).await
        }
        _ => dispatch(route.clone(), &req, &ctx).await,
    }?;
    // A preview is a POST that stores nothing: no change notice for it.
    let is_write =
        !matches!(req.method, Method::Get | Method::Head) && route != Route::PreviewScoring;
    if is_write && (200..300).contains(&response.status_code()) {
        live::notify_later(worker_ctx, &ctx.env, ctx.org(), ChangeSource::Api);
    }
    Ok(response)
}

async fn dispatch(
    route: Route,
    req: &ApiRequest,
    ctx: &Ctx,
) -> std::result::Result<Response, Problem> {
    match route {
        Route::Health
        | Route::OpenApi
        | Route::AuthConfig
        | Route::AuthToken
        | Route::Track { .. }
        | Route::Live
        | Route::ConnectCallback { .. } => {
            unreachable!("served before authentication")
        }
        Route::AuthSession => sign_in::session(ctx),
        Route::CreateLead => leads::create(req, ctx).await,
        Route::ListLeads => leads::list(req, ctx).await,
        Route::BulkLeads => leads::bulk(req, ctx).await,
        Route::ListMembers => members::list(req, ctx).await,
        Route::GetLead { id } => leads::get(req, ctx, &id).await,
        Route::UpdateLead { id } => leads::update(req, ctx, &id).await,
        Route::DeleteLead { id } => leads::delete(req, ctx, &id).await,
        Route::MergeLead { id } => leads::merge(req, ctx, &id).await,
        Route::ExportLead { id } => leads::export(req, ctx, &id).await,
        Route::LeadHeat { id } => leads::heat(req, ctx, &id).await,
        Route::CreateInteraction { id } => interactions::create(req, ctx, &id).await,
        Route::Timeline { id } => interactions::timeline(req, ctx, &id).await,
        Route::Feed => interactions::feed(req, ctx).await,
        Route::Changes => changes::get(req, ctx).await,
        Route::MoveLead { id } => pipeline::move_lead(req, ctx, &id).await,
        Route::ListCustomFields => custom_fields::list(req, ctx).await,
        Route::CreateCustomField => custom_fields::create(req, ctx).await,
        Route::UpdateCustomField { id } => custom_fields::update(req, ctx, &id).await,
        Route::DeleteCustomField { id } => custom_fields::delete(req, ctx, &id).await,
        Route::ListStages => pipeline::list_stages(req, ctx).await,
        Route::CreateStage => pipeline::create_stage(req, ctx).await,
        Route::UpdateStage { id } => pipeline::update_stage(req, ctx, &id).await,
        Route::DeleteStage { id } => pipeline::delete_stage(req, ctx, &id).await,
        Route::ReorderStages => pipeline::reorder_stages(req, ctx).await,
        Route::Board => pipeline::board(req, ctx).await,
        Route::Dashboard => dashboard::get(req, ctx).await,
        Route::GetScoring => scoring::get(req, ctx).await,
        Route::PutScoring => scoring::put(req, ctx).await,
        Route::PreviewScoring => scoring::preview(req, ctx).await,
        Route::Recalculate => rescore::request(req, ctx).await,
        Route::RecalculateStatus => rescore::status(req, ctx).await,
        Route::ListIntegrations => integrations::list(req, ctx).await,
        Route::PutIntegration { platform } => integrations::put(req, ctx, &platform).await,
        Route::DeleteIntegration { platform } => integrations::delete(req, ctx, &platform).await,
        Route::ReplayDead { platform } => integrations::replay(req, ctx, &platform).await,
        Route::StartConnect { platform } => connect::start(req, ctx, &platform).await,
        Route::GetPendingConnection { platform, id } => {
            connect::get_pending(req, ctx, &platform, &id).await
        }
        Route::CompletePendingConnection { platform, id } => {
            connect::complete_pending(req, ctx, &platform, &id).await
        }
        Route::TrackingSettings => tracking::settings(req, ctx).await,
        Route::RotateSiteKey => tracking::rotate(req, ctx).await,
        Route::DemoDataStatus => demo::status(req, ctx).await,
        Route::LoadDemoData => demo::load(req, ctx).await,
    }
}
