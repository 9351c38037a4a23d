//! The plugin conformance suite: the same normal and hostile cases, run through the host
//! against every protocol plugin and its real identity provider. A plugin that passes it is fit
//! to ship (STYLE.md section 10).
//!
//! - `normal_login`: the IdP's answer signs a JIT user in; one login.succeeded, one session.
//! - `answer_from_another_login`: login B's answer with login A's state, in A's browser:
//!   refused by the plugin, on A's attempt.
//! - `forged_state`: a state nobody issued is refused by the host (`state_mismatch`); the real
//!   login still works.
//! - `replayed_callback`: the same callback twice (`state_reused`), then its answer at a second
//!   login: refused; one session in all.
//! - `oversized_input`: an enormous parameter gets a clean 4xx; the answer at the route's size
//!   limit is refused with a reason.
//! - `slow_upstream`: the back channel answers after the outbound limit: `idp_unreachable`
//!   within the limit.
//! - `malformed_upstream`: the back channel answers 200 with garbage, a truncated body, the
//!   wrong content type, HTML, bad XML, nothing, or JSON of another shape.
//!
//! Each case is one test per subject (`oidc::replayed_callback`, ...), starts its own
//! `gatehouse serve` on SQLite, and prints one `conformance | subject | case | outcome` line
//! (run with `--nocapture` to read the report). Slow and malformed upstreams come from a
//! fault-injecting proxy in front of the real IdP (`proxy.rs`).
//!
//! ```sh
//! cargo test -p gatehouse --test conformance -- --nocapture
//! cargo test -p gatehouse --test conformance -- --nocapture cas::   # one plugin
//! ```

#[path = "../common/mod.rs"]
#[macro_use]
mod common;

mod cases;
mod proxy;
mod subject;
mod subjects;

/// `conformance_suite!(module: SubjectType)`: every case as a test of that subject.
/// `conformance_suite!(module: SubjectType { case, #[ignore = "why"] case, .. })`: the cases
/// listed, with attributes (list every case: the short form is the norm).
macro_rules! conformance_suite {
    ($module:ident: $subject:ty) => {
        conformance_suite!($module: $subject {
            normal_login,
            answer_from_another_login,
            forged_state,
            replayed_callback,
            oversized_input,
            slow_upstream,
            malformed_upstream,
        });
    };
    ($module:ident: $subject:ty { $($(#[$attribute:meta])* $case:ident),* $(,)? }) => {
        mod $module {
            $(
                #[tokio::test]
                $(#[$attribute])*
                async fn $case() {
                    crate::cases::$case::<$subject>().await
                }
            )*
        }
    };
}

conformance_suite!(oidc: crate::subjects::oidc::Oidc);
conformance_suite!(oauth2: crate::subjects::oauth2::OAuth2);
conformance_suite!(saml: crate::subjects::saml::Saml {
    normal_login,
    answer_from_another_login,
    forged_state,
    replayed_callback,
    oversized_input,
    // SAML's only back channel at login is the idp_metadata_url fetch: the proxy serves it.
    slow_upstream,
    malformed_upstream,
});
conformance_suite!(cas: crate::subjects::cas::Cas);
