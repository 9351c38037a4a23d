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
    layout_moving_on(title, None, body)
}

/// The page layout; with `refresh_to`, the browser moves on to that URL at once.
fn layout_moving_on(title: &str, refresh_to: Option<&str>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                @if let Some(href) = refresh_to {
                    meta http-equiv="refresh" content=(format!("0;url={href}"));
                }
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

/// Home-realm discovery on the choice page: an email field that finds the connection owning
/// the address's domain.
pub struct Discover<'a> {
    /// Where the form posts.
    pub action: &'a str,
    /// `return_to` to carry along.
    pub return_to: Option<&'a str>,
    /// The address typed, shown again with `message`.
    pub email: &'a str,
    /// What went wrong with the last address.
    pub message: Option<&'a str>,
    /// Standard login, when the tenant offers a method: suggested with `message`.
    pub standard_href: Option<&'a str>,
}

/// "Sign in to {tenant}" with one button per connection and, when the tenant offers a standard
/// method, the standard-login link; with several connections, also an email field that picks
/// the connection (`discover`).
pub fn choice(
    tenant: &str,
    choices: &[Choice],
    standard_href: Option<&str>,
    discover: Option<&Discover<'_>>,
) -> Markup {
    layout(
        &format!("Sign in to {tenant}"),
        html! {
            h1 { "Sign in to " (tenant) }
            @if choices.is_empty() && standard_href.is_none() {
                p { "This organisation has not set up a way to sign in yet." }
            } @else if choices.is_empty() {
                p { "Single sign-on is not configured for this organisation yet." }
            }
            @if let Some(discover) = discover {
                form #discover method="post" action=(discover.action) {
                    label for="hrd-email" { "Work email address" }
                    @if let Some(message) = discover.message {
                        p.error #hrd-message role="alert" { (message)
                            @if let Some(href) = discover.standard_href {
                                " " a #hrd-standard href=(href) { "Sign in with Gatehouse instead" } "."
                            }
                        }
                    }
                    input #hrd-email type="email" name="email" value=(discover.email) required
                        autocomplete="email" maxlength="254";
                    @if let Some(target) = discover.return_to {
                        input type="hidden" name="return_to" value=(target);
                    }
                    button #hrd-submit type="submit" { "Continue" }
                }
                p { "Or choose your organisation's sign-in:" }
            }
            ul.choices {
                @for choice in choices {
                    li { a.button href=(choice.href) { "Sign in with " (choice.label) } }
                }
                @if let Some(href) = standard_href {
                    li { a.button.secondary href=(href) { "Sign in with Gatehouse" } }
                }
            }
        },
    )
}

/// The standard-login page: the methods the tenant offers (the email-code form, then a
/// button per provider such as Google and Facebook).
#[allow(clippy::too_many_arguments)]
pub fn standard_login(
    tenant: &str,
    email_code_action: Option<&str>,
    providers: &[Choice],
    return_to: Option<&str>,
    email: &str,
    error: Option<&str>,
    back_href: &str,
) -> Markup {
    layout(
        &format!("Sign in to {tenant}"),
        html! {
            h1 { "Sign in to " (tenant) }
            @if let Some(action) = email_code_action {
                p { "We will email you a 6-digit code and a sign-in link." }
                @if let Some(error) = error {
                    p.error role="alert" { (error) }
                }
                form method="post" action=(action) {
                    label for="email" { "Email address" }
                    input #email type="email" name="email" value=(email) required
                        autocomplete="email" maxlength="254" autofocus;
                    @if let Some(target) = return_to {
                        input type="hidden" name="return_to" value=(target);
                    }
                    button type="submit" { "Email me a code" }
                }
            }
            @if !providers.is_empty() {
                ul.choices #providers {
                    @for provider in providers {
                        li { a.button.secondary href=(provider.href) { "Sign in with " (provider.label) } }
                    }
                }
            }
            @if email_code_action.is_none() && providers.is_empty() {
                p { "Standard login (email code, Google, Facebook) is not enabled for this organisation." }
            }
            p { a href=(back_href) { "Back to the sign-in options" } }
        },
    )
}

/// After a code was requested: where to type it. The same page whether or not an account
/// exists for the address.
pub fn code_sent(
    tenant: &str,
    email: &str,
    action: &str,
    lifetime: Option<&str>,
    error: Option<&str>,
    restart_href: &str,
) -> Markup {
    layout(
        "Check your email",
        html! {
            h1 { "Check your email" }
            p { "We sent a 6-digit code and a sign-in link to " strong { (email) } "."
                @if let Some(lifetime) = lifetime {
                    " They work once, for " (lifetime) "."
                }
            }
            @if let Some(error) = error {
                p.error role="alert" { (error) }
            }
            form method="post" action=(action) {
                label for="code" { "Code" }
                input #code type="text" name="code" inputmode="numeric" pattern="[0-9 ]*"
                    autocomplete="one-time-code" maxlength="12" required autofocus;
                button type="submit" { "Sign in to " (tenant) }
            }
            p { a href=(restart_href) { "Use another address or send a new code" } }
        },
    )
}

/// The one-click link's page: nothing happens until the button is pressed, so a mail scanner
/// that fetches the link signs nobody in.
pub fn confirm_link(tenant: &str, action: &str, token: &str) -> Markup {
    layout(
        &format!("Sign in to {tenant}"),
        html! {
            h1 { "Sign in to " (tenant) }
            p { "Confirm that you want to sign in. This works in the browser where you asked for the code." }
            form method="post" action=(action) {
                input type="hidden" name="token" value=(token);
                button type="submit" { "Sign in to " (tenant) }
            }
        },
    )
}

/// An address of one of the tenant's SSO domains: members sign in through SSO.
pub fn sso_required(tenant: &str, label: &str, href: &str, attempt_id: &str, method: &str) -> Markup {
    layout(
        &format!("Sign in to {tenant}"),
        html! {
            h1 { "Use your organisation's sign-in" }
            p { "Your email address belongs to " (tenant) ", whose members sign in with "
                (label) ", not with " (method) "." }
            ul.choices {
                li { a.button href=(href) { "Sign in with " (label) } }
            }
            p { "If you contact support, quote this reference: " code id="attempt-id" { (attempt_id) } }
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

/// The answer to a form post that leads on to another page: a page that moves on by itself,
/// with a link in case it does not. Browsers check every redirect that answers a form post
/// against the form page's `form-action 'self'`, so a redirect to the app or to an identity
/// provider on another origin would be blocked; a navigation started by this page is not.
pub fn continue_to(heading: &str, message: &str, href: &str) -> Markup {
    layout_moving_on(
        heading,
        Some(href),
        html! {
            h1 { (heading) }
            p { (message) }
            ul.choices {
                li { a.button id="continue" href=(href) { "Continue" } }
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
box-shadow:0 1px 4px rgba(0,0,0,.12);overflow-wrap:anywhere}\
h1{font-size:1.4rem}ul.choices{list-style:none;padding:0}\
li{margin:.6rem 0}a.button{display:block;text-align:center;padding:.75rem;border-radius:6px;\
background:#2450c8;color:#fff;text-decoration:none}a.button.secondary{background:#e8ebf2;\
color:#1d2330}code{background:#eef;padding:.1rem .3rem;border-radius:3px}\
form{display:flex;flex-direction:column;gap:.6rem}input{padding:.6rem;font-size:1rem;\
font-family:inherit;border:1px solid #b8bfcc;border-radius:6px}button{padding:.75rem;border:0;\
border-radius:6px;background:#2450c8;color:#fff;font-size:1rem;font-family:inherit;\
cursor:pointer}.error{color:#a1261b}";
