//! The HTML pages people see. Rendered with maud, which escapes every interpolated value.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use maud::{html, Markup, DOCTYPE};

/// A connection button on the choice page.
pub struct Choice {
    /// Button label.
    pub label: String,
    /// Where the button goes.
    pub href: String,
}

fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) " · Gatehouse" }
                style { (STYLE) }
            }
            body { main { (body) } }
        }
    }
}

/// Answers an HTML page with the headers every page gets.
pub fn respond(status: StatusCode, page: Markup) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Content-Security-Policy", CSP))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .body(page.into_string())
}

/// "Sign in to {tenant}" with one button per connection and the standard-login link.
pub fn choice(tenant: &str, choices: &[Choice], standard_href: &str) -> Markup {
    layout(
        &format!("Sign in to {tenant}"),
        html! {
            h1 { "Sign in to " (tenant) }
            @if choices.is_empty() {
                p { "Single sign-on is not configured for this organisation yet." }
            }
            ul.choices {
                @for choice in choices {
                    li { a.button href=(choice.href) { "Sign in with " (choice.label) } }
                }
                li { a.button.secondary href=(standard_href) { "Sign in with Gatehouse" } }
            }
        },
    )
}

/// The standard-login page, while no standard method is enabled.
pub fn standard_not_enabled(tenant: &str, back_href: &str) -> Markup {
    layout(
        &format!("Sign in to {tenant}"),
        html! {
            h1 { "Sign in to " (tenant) }
            p { "Standard login (email code, Google, Facebook) is not enabled for this organisation." }
            p { a href=(back_href) { "Back to the sign-in options" } }
        },
    )
}

/// A refused login, naming the attempt to quote to support.
pub fn login_failed(message: &str, attempt_id: Option<&str>, retry_href: Option<&str>) -> Markup {
    layout(
        "Sign-in failed",
        html! {
            h1 { "Sign-in failed" }
            p { (message) }
            @if let Some(id) = attempt_id {
                p { "If you contact support, quote this reference: " code id="attempt-id" { (id) } }
            }
            @if let Some(href) = retry_href {
                p { a href=(href) { "Try again" } }
            }
        },
    )
}

/// A plain "not found" page.
pub fn not_found() -> Markup {
    layout(
        "Not found",
        html! {
            h1 { "Not found" }
            p { "There is no sign-in page at this address. Check the link your organisation gave you." }
        },
    )
}

/// A plain page for a request the service could not read.
pub fn bad_request(message: &str) -> Markup {
    layout("Bad request", html! { h1 { "Bad request" } p { (message) } })
}

const CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f5f6f8;color:#1d2330;margin:0}\
main{max-width:28rem;margin:4rem auto;padding:2rem;background:#fff;border-radius:8px;\
box-shadow:0 1px 4px rgba(0,0,0,.12)}h1{font-size:1.4rem}ul.choices{list-style:none;padding:0}\
li{margin:.6rem 0}a.button{display:block;text-align:center;padding:.75rem;border-radius:6px;\
background:#2450c8;color:#fff;text-decoration:none}a.button.secondary{background:#e8ebf2;\
color:#1d2330}code{background:#eef;padding:.1rem .3rem;border-radius:3px}";
