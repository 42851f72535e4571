//! Tests of the JWT and API-key layers: tokens are minted here with the
//! same crate, signed with throwaway keys made for these tests only.

use base64::Engine;
use jsonwebtoken::{encode, get_current_timestamp, Algorithm, EncodingKey, Header};
use serde_json::json;

use super::*;
use crate::middleware::tests::head;
use crate::middleware::{Answer, Chain, Content, Context, Layer};

const RSA_PRIVATE: &str = include_str!("testdata/rsa.pem");
const RSA_PUBLIC: &str = include_str!("testdata/rsa.pub");
const EC_PRIVATE: &str = include_str!("testdata/ec.pem");
const EC_PUBLIC: &str = include_str!("testdata/ec.pub");
const EC384_PRIVATE: &str = include_str!("testdata/ec384.pem");
const EC384_PUBLIC: &str = include_str!("testdata/ec384.pub");

const SECRET: &[u8] = b"a-test-secret-of-some-length";

fn claims(extra: serde_json::Value) -> serde_json::Value {
    let mut claims =
        json!({"sub": "alice", "roles": ["admin"], "exp": get_current_timestamp() + 600});
    for (k, v) in extra.as_object().unwrap() {
        claims[k] = v.clone();
    }
    claims
}

fn hs256(claims: &serde_json::Value) -> String {
    encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap()
}

fn layer(options: JwtOptions) -> JwtAuth {
    JwtAuth::new(options).unwrap()
}

/// The answer to a GET of `path` with `headers`, and the context it left.
fn run(layer: &dyn Layer, path: &str, headers: &[(&str, &str)]) -> (Option<Answer>, Context) {
    let mut head = head(path, headers);
    let mut context = Context::default();
    let answer = layer.request(&mut head, &mut context);
    (answer, context)
}

fn detail(answer: &Answer) -> String {
    let Content::Bytes(body) = &answer.body else {
        panic!("a problem body")
    };
    let problem: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(problem["status"], 401);
    problem["detail"].as_str().unwrap().to_owned()
}

fn refused(layer: &dyn Layer, headers: &[(&str, &str)]) -> (String, String) {
    let (answer, context) = run(layer, "/private", headers);
    let answer = answer.expect("refused");
    assert_eq!(answer.status, 401);
    assert_eq!(answer.headers["content-type"], "application/problem+json");
    assert!(context.values().is_empty());
    let challenge = answer.headers["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    (detail(&answer), challenge)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[test]
fn a_valid_token_s_claims_become_jwt_claims_and_user() {
    let layer = layer(JwtOptions::hs256(SECRET));
    let token = hs256(&claims(json!({})));
    let (answer, context) = run(&layer, "/private", &[("authorization", &bearer(&token))]);
    assert!(answer.is_none());
    let user: serde_json::Value = serde_json::from_str(context.get("user").unwrap()).unwrap();
    assert_eq!(user["sub"], "alice");
    assert_eq!(user["roles"], json!(["admin"]));
    assert_eq!(context.get("jwt_claims"), context.get("user"));
}

#[test]
fn the_scheme_is_matched_regardless_of_case_and_a_wrong_one_is_no_token() {
    let layer = layer(JwtOptions::hs256(SECRET));
    let token = hs256(&claims(json!({})));
    let (answer, _) = run(
        &layer,
        "/p",
        &[("authorization", &format!("bearer  {token}"))],
    );
    assert!(answer.is_none());
    for value in [
        format!("Basic {token}"),
        format!("Bearer{token}"),
        "Bearer ".into(),
    ] {
        let (detail, challenge) = refused(&layer, &[("authorization", &value)]);
        assert_eq!(detail, "Missing authentication token", "{value}");
        assert_eq!(challenge, "Bearer");
    }
    let (detail, challenge) = refused(&layer, &[]);
    assert_eq!(detail, "Missing authentication token");
    assert_eq!(challenge, "Bearer");
}

#[test]
fn a_custom_header_without_prefix_and_a_cookie_are_sources_too() {
    let token = hs256(&claims(json!({})));
    let mut options = JwtOptions::hs256(SECRET);
    options.header_name = "X-Token".into();
    options.header_prefix = String::new();
    options.cookie_name = Some("session".into());
    let layer = layer(options);
    assert!(run(&layer, "/", &[("x-token", &token)]).0.is_none());
    let cookie = format!("theme=dark; session={token}; other=1");
    assert!(run(&layer, "/", &[("cookie", &cookie)]).0.is_none());
    let (detail, _) = refused(&layer, &[("cookie", "sessionx=abc; theme=dark")]);
    assert_eq!(detail, "Missing authentication token");
    let (detail, _) = refused(&layer, &[("cookie", "session=abc")]);
    assert_eq!(detail, "Malformed token");
}

#[test]
fn refused_tokens_say_why_with_an_invalid_token_challenge() {
    let mut options = JwtOptions::hs256(SECRET);
    options.issuer = vec!["https://issuer.example".into()];
    options.audience = vec!["api".into()];
    let layer = layer(options);
    let good = json!({"iss": "https://issuer.example", "aud": "api"});
    let now = get_current_timestamp();
    let with = |extra: serde_json::Value| {
        let mut c = claims(good.clone());
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        hs256(&c)
    };
    assert!(
        run(&layer, "/", &[("authorization", &bearer(&with(json!({}))))])
            .0
            .is_none()
    );
    let forged = {
        let token = with(json!({}));
        let (body, _) = token.rsplit_once('.').unwrap();
        let other = encode(
            &Header::new(Algorithm::HS256),
            &claims(good.clone()),
            &EncodingKey::from_secret(b"another secret"),
        )
        .unwrap();
        format!("{body}.{}", other.rsplit_once('.').unwrap().1)
    };
    let cases = [
        (with(json!({"exp": now - 120})), "Token has expired"),
        (with(json!({"nbf": now + 3600})), "Token is not valid yet"),
        (
            with(json!({"iss": "https://evil.example"})),
            "Invalid issuer",
        ),
        (with(json!({"aud": "other"})), "Invalid audience"),
        (forged, "Invalid token signature"),
        ("not-a-token".into(), "Malformed token"),
        ("a.b.c".into(), "Malformed token"),
        ("!!!.@@@.###".into(), "Malformed token"),
        ("x".repeat(MAX_TOKEN_LEN + 1), "Token is too large"),
    ];
    for (token, expected) in cases {
        let (detail, challenge) = refused(&layer, &[("authorization", &bearer(&token))]);
        assert_eq!(detail, expected, "{token:.60}");
        assert_eq!(challenge, "Bearer error=\"invalid_token\"");
    }
}

#[test]
fn a_token_without_the_required_claims_is_refused() {
    let mut options = JwtOptions::hs256(SECRET);
    options.issuer = vec!["me".into()];
    let layer = layer(options);
    let mut no_iss = claims(json!({}));
    let token = hs256(&no_iss);
    assert_eq!(
        refused(&layer, &[("authorization", &bearer(&token))]).0,
        "Invalid issuer"
    );
    no_iss["iss"] = json!("me");
    no_iss.as_object_mut().unwrap().remove("exp");
    let token = hs256(&no_iss);
    assert_eq!(
        refused(&layer, &[("authorization", &bearer(&token))]).0,
        "Token has no expiry (exp claim)"
    );
}

#[test]
fn leeway_accepts_a_token_expired_within_it() {
    let mut options = JwtOptions::hs256(SECRET);
    options.leeway = 300;
    let layer = layer(options);
    let token = hs256(&claims(json!({"exp": get_current_timestamp() - 60})));
    assert!(run(&layer, "/", &[("authorization", &bearer(&token))])
        .0
        .is_none());
}

fn unsigned(header: serde_json::Value) -> String {
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = b64.encode(header.to_string());
    let body = b64.encode(claims(json!({})).to_string());
    format!("{header}.{body}.")
}

#[test]
fn alg_none_and_other_algorithms_are_not_allowed() {
    let layer = layer(JwtOptions::hs256(SECRET));
    for alg in ["none", "None", "NONE", "EdDSA"] {
        let token = unsigned(json!({"alg": alg, "typ": "JWT"}));
        let (detail, _) = refused(&layer, &[("authorization", &bearer(&token))]);
        assert_eq!(detail, "Token algorithm not allowed", "{alg}");
    }
    // A known algorithm in a header that does not parse for another reason
    // is malformed, not disallowed.
    let odd_header = unsigned(json!({"alg": "HS256", "kid": 5}));
    let (detail, _) = refused(&layer, &[("authorization", &bearer(&odd_header))]);
    assert_eq!(detail, "Malformed token");
    let hs512 = encode(
        &Header::new(Algorithm::HS512),
        &claims(json!({})),
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap();
    let (detail, _) = refused(&layer, &[("authorization", &bearer(&hs512))]);
    assert_eq!(detail, "Token algorithm not allowed");
}

fn rs256_options() -> JwtOptions {
    JwtOptions {
        algorithm: "RS256".into(),
        key: RSA_PUBLIC.into(),
        ..JwtOptions::hs256("")
    }
}

#[test]
fn rs256_and_es256_verify_with_the_public_key() {
    let rs = layer(rs256_options());
    let token = encode(
        &Header::new(Algorithm::RS256),
        &claims(json!({})),
        &EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap(),
    )
    .unwrap();
    assert!(run(&rs, "/", &[("authorization", &bearer(&token))])
        .0
        .is_none());

    let es = layer(JwtOptions {
        algorithm: "ES256".into(),
        key: EC_PUBLIC.into(),
        ..JwtOptions::hs256("")
    });
    let token = encode(
        &Header::new(Algorithm::ES256),
        &claims(json!({})),
        &EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).unwrap(),
    )
    .unwrap();
    assert!(run(&es, "/", &[("authorization", &bearer(&token))])
        .0
        .is_none());
}

#[test]
fn every_supported_algorithm_verifies_its_own_tokens_only() {
    let cases = [
        (
            Algorithm::HS256,
            "HS256",
            SECRET.to_vec(),
            EncodingKey::from_secret(SECRET),
        ),
        (
            Algorithm::HS384,
            "HS384",
            SECRET.to_vec(),
            EncodingKey::from_secret(SECRET),
        ),
        (
            Algorithm::HS512,
            "HS512",
            SECRET.to_vec(),
            EncodingKey::from_secret(SECRET),
        ),
        (
            Algorithm::RS256,
            "RS256",
            RSA_PUBLIC.into(),
            EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap(),
        ),
        (
            Algorithm::RS384,
            "RS384",
            RSA_PUBLIC.into(),
            EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap(),
        ),
        (
            Algorithm::RS512,
            "RS512",
            RSA_PUBLIC.into(),
            EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap(),
        ),
        (
            Algorithm::ES256,
            "ES256",
            EC_PUBLIC.into(),
            EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).unwrap(),
        ),
        (
            Algorithm::ES384,
            "ES384",
            EC384_PUBLIC.into(),
            EncodingKey::from_ec_pem(EC384_PRIVATE.as_bytes()).unwrap(),
        ),
    ];
    let tokens: Vec<String> = cases
        .iter()
        .map(|(algorithm, _, _, key)| {
            encode(&Header::new(*algorithm), &claims(json!({})), key).unwrap()
        })
        .collect();
    for (at, (_, name, public, _)) in cases.iter().enumerate() {
        let layer = layer(JwtOptions {
            algorithm: (*name).into(),
            key: public.clone(),
            ..JwtOptions::hs256("")
        });
        for (other, token) in tokens.iter().enumerate() {
            let (answer, _) = run(&layer, "/", &[("authorization", &bearer(token))]);
            assert_eq!(answer.is_none(), other == at, "{name} given token {other}");
        }
    }
}

#[test]
fn a_token_signed_hs256_with_the_rsa_public_key_is_refused() {
    let layer = layer(rs256_options());
    let confused = encode(
        &Header::new(Algorithm::HS256),
        &claims(json!({})),
        &EncodingKey::from_secret(RSA_PUBLIC.as_bytes()),
    )
    .unwrap();
    let (detail, _) = refused(&layer, &[("authorization", &bearer(&confused))]);
    assert_eq!(detail, "Token algorithm not allowed");
}

#[test]
fn bad_configurations_are_refused_naming_the_problem() {
    let build = |algorithm: &str, key: &str| {
        JwtAuth::new(JwtOptions {
            algorithm: algorithm.into(),
            key: key.into(),
            ..JwtOptions::hs256("")
        })
        .err()
        .map(|e| e.0)
    };
    assert!(build("HS256", "").unwrap().contains("must not be empty"));
    assert!(build("XS256", "k")
        .unwrap()
        .contains("unknown JWT algorithm"));
    assert!(build("none", "k")
        .unwrap()
        .contains("unknown JWT algorithm"));
    assert!(build("RS256", "secret").unwrap().contains("PEM public key"));
    assert!(build("RS256", RSA_PRIVATE)
        .unwrap()
        .contains("PEM public key"));
    assert!(build("RS256", EC_PUBLIC)
        .unwrap()
        .contains("not an RSA public key"));
    assert!(build("ES256", RSA_PUBLIC)
        .unwrap()
        .contains("EC public key"));
    assert!(build("ES256", EC384_PUBLIC).unwrap().contains("P-256"));
    assert!(build("ES384", EC384_PUBLIC).is_none());
    assert!(build("hs384", "k").is_none());
    let mut options = JwtOptions::hs256(SECRET);
    options.leeway = MAX_LEEWAY + 1;
    assert!(JwtAuth::new(options).err().unwrap().0.contains("leeway"));
    let mut options = JwtOptions::hs256(SECRET);
    options.cookie_name = Some("a;b".into());
    assert!(JwtAuth::new(options).is_err());
    let mut options = JwtOptions::hs256(SECRET);
    options.skip_paths = vec!["login".into()];
    assert!(JwtAuth::new(options).is_err());
}

#[test]
fn skipped_paths_and_preflights_need_no_token() {
    let mut options = JwtOptions::hs256(SECRET);
    options.skip_paths = vec!["/login".into(), "/public/".into()];
    let layer = layer(options);
    for path in [
        "/login",
        "/login/",
        "/login/help",
        "/public",
        "/public/a.css",
    ] {
        assert!(run(&layer, path, &[]).0.is_none(), "{path}");
    }
    for path in ["/loginx", "/publicity", "/", "/api/login"] {
        assert!(run(&layer, path, &[]).0.is_some(), "{path}");
    }
    let mut preflight = head("/private", &[("access-control-request-method", "POST")]);
    preflight.method = http::Method::OPTIONS;
    assert!(layer
        .request(&mut preflight, &mut Context::default())
        .is_none());
    let mut plain_options = head("/private", &[]);
    plain_options.method = http::Method::OPTIONS;
    assert!(layer
        .request(&mut plain_options, &mut Context::default())
        .is_some());
}

fn api_keys() -> ApiKeyAuth {
    ApiKeyAuth::new(
        [
            ("key-one".to_owned(), "service \"one\"".to_owned()),
            ("key-two".to_owned(), "two".to_owned()),
        ],
        "X-API-Key",
        vec!["/health".into()],
    )
    .unwrap()
}

#[test]
fn an_api_key_names_its_holder() {
    let layer = api_keys();
    let (answer, context) = run(&layer, "/", &[("x-api-key", "key-two")]);
    assert!(answer.is_none());
    assert_eq!(context.get("api_key_name"), Some("two"));
    assert_eq!(context.get("user"), Some(r#"{"name":"two"}"#));
    let (_, context) = run(&layer, "/", &[("x-api-key", "key-one")]);
    let user: serde_json::Value = serde_json::from_str(context.get("user").unwrap()).unwrap();
    assert_eq!(user["name"], "service \"one\"");
}

#[test]
fn missing_and_wrong_api_keys_are_refused() {
    let layer = api_keys();
    for (headers, expected) in [
        (vec![], "Missing API key"),
        (vec![("x-api-key", "  ")], "Missing API key"),
        (vec![("x-api-key", "key-on")], "Invalid API key"),
        (vec![("x-api-key", "key-one-and-more")], "Invalid API key"),
        (vec![("authorization", "key-one")], "Missing API key"),
    ] {
        let (detail, challenge) = refused(&layer, &headers);
        assert_eq!(detail, expected);
        assert_eq!(challenge, "ApiKey header=\"x-api-key\"");
    }
    assert!(run(&layer, "/health/live", &[]).0.is_none());
}

#[test]
fn an_api_key_may_carry_a_whole_user_document() {
    let layer = ApiKeyAuth::new(
        [ApiKey {
            key: "svc".into(),
            name: "billing".into(),
            user: Some(r#"{"name":"billing","roles":["service"]}"#.into()),
        }],
        "X-API-Key",
        vec![],
    )
    .unwrap();
    let (_, context) = run(&layer, "/", &[("x-api-key", "svc")]);
    assert_eq!(context.get("api_key_name"), Some("billing"));
    assert_eq!(
        context.get("user"),
        Some(r#"{"name":"billing","roles":["service"]}"#)
    );
    let not_an_object = ApiKey {
        key: "k".into(),
        name: "n".into(),
        user: Some("[1]".into()),
    };
    assert!(ApiKeyAuth::new([not_an_object], "X-API-Key", vec![]).is_err());
}

#[test]
fn api_key_configurations_are_checked() {
    let none: [ApiKey; 0] = [];
    assert!(ApiKeyAuth::new(none, "X-API-Key", vec![]).is_err());
    assert!(ApiKeyAuth::new([(String::new(), "n".to_owned())], "X-API-Key", vec![]).is_err());
    assert!(ApiKeyAuth::new([("k".to_owned(), "n".to_owned())], "bad header", vec![]).is_err());
}

#[test]
fn the_options_debug_form_hides_the_key() {
    let shown = format!("{:?}", JwtOptions::hs256(SECRET));
    assert!(!shown.contains("a-test-secret"), "{shown}");
    assert!(shown.contains("<28 bytes>"), "{shown}");
}

#[test]
fn constant_time_eq_compares_whole_values() {
    assert!(constant_time_eq(b"secret", b"secret"));
    assert!(!constant_time_eq(b"secret", b"secreT"));
    assert!(!constant_time_eq(b"secret", b"secret!"));
    assert!(constant_time_eq(b"", b""));
}

#[test]
fn through_a_chain_a_refusal_is_a_401_problem() {
    let mut chain = Chain::default();
    chain
        .push("/api", Box::new(layer(JwtOptions::hs256(SECRET))))
        .unwrap();
    let mut context = Context::default();
    assert!(chain
        .request(&mut head("/other", &[]), &mut context)
        .is_none());
    let answer = chain
        .request(&mut head("/api/users", &[]), &mut Context::default())
        .unwrap();
    assert_eq!(answer.status, 401);
}
