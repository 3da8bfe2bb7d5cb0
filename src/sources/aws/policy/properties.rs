//! Property tests over a policy grammar (`grammar.rs`), and the generated-policy run.
use super::grammar::{DOMAIN, OWNER, Spec, Tables};
use super::{Context, DYNAMODB, OPENSEARCH, Reach, Trust, Verdict, evaluate};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::time::Instant;

fn eval(policy: &Value, trust: &Trust) -> Verdict {
    let ctx = Context {
        owner: OWNER,
        resource_arn: DOMAIN,
        trust,
        service: &OPENSEARCH,
        now: None,
    };
    evaluate(policy, &ctx).expect("generated policies are policies")
}

fn reach(policy: &Value, trust: &Trust) -> Reach {
    eval(policy, trust).reach
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        any::<bool>(),
        0..64usize,
        0..64usize,
        0..64usize,
        prop::collection::vec(0..64usize, 0..3),
    )
}

fn specs() -> impl Strategy<Value = Vec<Spec>> {
    prop::collection::vec(spec(), 0..5)
}

fn trust() -> impl Strategy<Value = Trust> {
    prop_oneof![
        Just(Trust::default()),
        Just(Trust {
            cidrs: vec!["203.0.113.0/24".into()],
            ..Trust::default()
        }),
        Just(Trust {
            org_ids: vec!["o-a1b2c3d4e5".into()],
            ..Trust::default()
        }),
    ]
}

/// Reverse every list inside the statements, and the statements themselves.
fn reversed(v: &Value) -> Value {
    match v {
        Value::Array(a) => Value::Array(a.iter().rev().map(reversed).collect()),
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), reversed(v))).collect()),
        other => other.clone(),
    }
}

proptest! {
    // 400 cases by default; PROPTEST_CASES=20000 for a longer hunt.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(400),
        ..ProptestConfig::default()
    })]

    #[test]
    fn adding_an_allow_never_lowers_reach(base in specs(), mut extra in spec(), t in trust()) {
        let tables = Tables::new();
        extra.0 = true;
        let before = reach(&tables.policy(&base), &t);
        let mut more = base.clone();
        more.push(extra);
        prop_assert!(reach(&tables.policy(&more), &t) >= before);
    }

    #[test]
    fn adding_a_deny_never_raises_reach(base in specs(), mut extra in spec(), t in trust()) {
        let tables = Tables::new();
        extra.0 = false;
        let before = reach(&tables.policy(&base), &t);
        let mut more = base.clone();
        more.insert(0, extra);
        prop_assert!(reach(&tables.policy(&more), &t) <= before);
    }

    #[test]
    fn reordering_changes_nothing(base in specs(), t in trust()) {
        let tables = Tables::new();
        let policy = tables.policy(&base);
        let (a, b) = (eval(&policy, &t), eval(&reversed(&policy), &t));
        prop_assert_eq!((a.reach, a.caller, a.action), (b.reach, b.caller, b.action));
    }

    #[test]
    fn trusting_more_never_widens(base in specs(), pick in 0..4usize) {
        let tables = Tables::new();
        let policy = tables.policy(&base);
        let before = reach(&policy, &Trust::default());
        let more = match pick {
            0 => Trust { accounts: vec!["999988887777".into()], ..Trust::default() },
            1 => Trust { accounts: vec!["444455556666".into(), "999900000000".into()], ..Trust::default() },
            2 => Trust { cidrs: vec!["52.0.0.0/8".into()], ..Trust::default() },
            _ => Trust { cidrs: vec!["0.0.0.0/1".into(), "::/1".into(), "not-a-cidr".into()], ..Trust::default() },
        };
        prop_assert!(reach(&policy, &more) <= before);
    }

    #[test]
    fn public_verdicts_carry_a_statement(base in specs()) {
        let v = eval(&Tables::new().policy(&base), &Trust::default());
        prop_assert_eq!(v.reach > Reach::Restricted, v.statement.is_some());
        prop_assert!(v.reason.ends_with('.'));
    }

    #[test]
    fn arbitrary_json_never_panics(v in arbitrary_json(), wrap in any::<bool>()) {
        let policy = if wrap { json!({"Statement": v}) } else { v };
        let ctx = Context { owner: OWNER, resource_arn: DOMAIN, trust: &Trust::default(), service: &OPENSEARCH, now: Some(0) };
        let _ = evaluate(&policy, &ctx);
    }
}

/// JSON built from the words policies use, so it gets past the first checks.
fn arbitrary_json() -> impl Strategy<Value = Value> {
    let words = prop::sample::select(vec![
        "Statement",
        "Effect",
        "Allow",
        "Deny",
        "Principal",
        "NotPrincipal",
        "AWS",
        "Service",
        "Federated",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Condition",
        "*",
        "es:*",
        "es:ESHttp*",
        "IpAddress",
        "NotIpAddress",
        "StringLike",
        "ForAllValues:StringEquals",
        "Null",
        "Bool",
        "ArnLike",
        "DateLessThan",
        "NumericLessThan",
        "aws:SourceIp",
        "aws:PrincipalArn",
        "aws:SourceVpce",
        "aws:CurrentTime",
        "0.0.0.0/0",
        "::/0",
        "1.2.3.4/99",
        "arn:aws:iam::*:root",
        "arn:aws:iam:root",
        "111122223333",
        "true",
        "2020-01-01T00:00:00Z",
        "é?*",
        "",
        "arn:aws:es:us-east-1:111122223333:domain/orders/*",
    ]);
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        words.clone().prop_map(|w| json!(w)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((words.clone(), inner), 0..5)
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
        ]
    })
}

/// xorshift64*: tiny, seeded, good enough to spread over the grammar.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Values that break expectations, swapped in for a statement element.
fn junk(rng: &mut Rng) -> Value {
    let pool = [
        json!(null),
        json!(42),
        json!([]),
        json!({}),
        json!(["*", null]),
        json!({"AWS": [1, "*"]}),
        json!({"IpAddress": "nope"}),
        json!({"StringLike": {"aws:SourceIp": ["*", {"x": 1}]}}),
        json!("arn:aws:iam::*"),
        json!("::/0"),
    ];
    pool[rng.below(pool.len())].clone()
}

/// Generated policies (fixed seed), one in twenty with a junk element, one in ten against a
/// DynamoDB table: none may panic. The suite runs 10,000; the recorded 1,000,000-policy run is
/// `IAM_POLICIES=1000000 cargo test --release generated_policies -- --nocapture` (BENCHMARKS.md).
#[test]
fn generated_policies() {
    let tables = Tables::new();
    let mut rng = Rng(0x5EED_1A11_0C0F_FEE5);
    let trusts = [
        Trust::default(),
        Trust {
            cidrs: vec!["52.0.0.0/8".into()],
            org_ids: vec!["o-a1b2c3d4e5".into()],
            ..Trust::default()
        },
    ];
    let table_arn = "arn:aws:dynamodb:us-east-1:111122223333:table/orders";
    let mut counts = [0usize; 3];
    let mut errors = 0usize;
    let start = Instant::now();
    let n: usize = std::env::var("IAM_POLICIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    for i in 0..n {
        let specs: Vec<Spec> = (0..rng.below(6))
            .map(|_| {
                let conds = (0..rng.below(3)).map(|_| rng.below(64)).collect();
                (rng.below(3) != 0, rng.below(64), rng.below(64), rng.below(64), conds)
            })
            .collect();
        let mut policy = tables.policy(&specs);
        // One policy in twenty gets a junk element.
        if rng.below(20) == 0
            && let Some(Value::Object(s)) = policy["Statement"].as_array_mut().and_then(|a| a.first_mut())
        {
            let keys = ["Principal", "Action", "Resource", "Condition", "Effect", "NotPrincipal"];
            s.insert(keys[rng.below(keys.len())].into(), junk(&mut rng));
        }
        let trust = &trusts[i % 2];
        let (service, arn) = if i % 10 == 0 {
            (&DYNAMODB, table_arn)
        } else {
            (&OPENSEARCH, DOMAIN)
        };
        let now = (i % 3 == 0).then_some(1_735_689_600);
        let ctx = Context {
            owner: OWNER,
            resource_arn: arn,
            trust,
            service,
            now,
        };
        match evaluate(&policy, &ctx) {
            Ok(v) => counts[v.reach as usize] += 1,
            Err(_) => errors += 1,
        }
    }
    let took = start.elapsed();
    println!(
        "{n} policies in {:.2?} ({:.1} µs each): restricted {}, cross-account {}, public {}, errors {errors}",
        took,
        took.as_secs_f64() * 1e6 / n as f64,
        counts[Reach::Restricted as usize],
        counts[Reach::CrossAccount as usize],
        counts[Reach::Public as usize],
    );
    assert_eq!(counts.iter().sum::<usize>() + errors, n);
}
