//! Custom field definitions: everyone lists them, admins create, update and delete them.

use leadheat_domain::custom_fields::{
    parse_definition, parse_definition_patch, too_many_definitions,
};
use leadheat_edge::http::{self, Problem};
use leadheat_edge::store::custom_fields as store;
use serde_json::{json, Value};
use worker::Response;

use crate::context::Ctx;
use crate::request::ApiRequest;

pub async fn list(_req: &ApiRequest, ctx: &Ctx) -> Result<Response, Problem> {
    let items = store::list(&ctx.tenant).await?;
    http::json(200, &json!({"items": items, "next_cursor": null}))
}

pub async fn create(req: &ApiRequest, ctx: &Ctx) -> Result<Response, Problem> {
    ctx.require_admin()?;
    let body: Value = req.json()?;
    let def = parse_definition(&body).map_err(Problem::validation)?;
    match store::create(&ctx.tenant, &def, ctx.now).await? {
        store::Created::Record(record) => {
            let mut response = http::json(201, &record)?;
            response
                .headers_mut()
                .set("Location", &format!("/v1/custom-fields/{}", record.id))?;
            Ok(response)
        }
        store::Created::KeyTaken => Err(Problem::conflict(format!(
            "a custom field with key {:?} already exists",
            def.key
        ))),
        store::Created::LimitReached => {
            let error = too_many_definitions(&def.key);
            Err(Problem::conflict(error.message.clone()).with_errors(vec![error]))
        }
    }
}

pub async fn update(req: &ApiRequest, ctx: &Ctx, id: &str) -> Result<Response, Problem> {
    ctx.require_admin()?;
    let body: Value = req.json()?;
    let current = store::get(&ctx.tenant, id)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no custom field {id}")))?;
    let def = parse_definition_patch(&body, &current.def).map_err(Problem::validation)?;
    let record = store::update(&ctx.tenant, id, &def, ctx.now)
        .await?
        .ok_or_else(|| Problem::not_found(format!("no custom field {id}")))?;
    http::json(200, &record)
}

pub async fn delete(_req: &ApiRequest, ctx: &Ctx, id: &str) -> Result<Response, Problem> {
    ctx.require_admin()?;
    if store::delete(&ctx.tenant, id).await? {
        http::no_content()
    } else {
        Err(Problem::not_found(format!("no custom field {id}")))
    }
}
