//! Every module's sample payloads equal KAZOO's sample files (`shared/fixtures/kazoo/`), except
//! for the deliberate differences listed in [`expected_from_fixture`]; any other mismatch fails.

use serde_json::{Map, Value};
use webhooks_core::WebhookModule;
use webhooks_modules::{
    ChannelAnswer, ChannelBridge, ChannelCreate, ChannelDestroy, Notifications, Object, Parking,
};

fn fixture(id: &str) -> Vec<Value> {
    let path = format!(
        "{}/../../shared/fixtures/kazoo/{id}-samples.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {path}: {e}"))
}

fn object(v: &mut Value) -> &mut Map<String, Value> {
    v.as_object_mut().expect("samples are objects")
}

/// What our payload must be, given KAZOO's sample. The only differences allowed:
///
/// - channel samples (spec §14): `timestamp` is an integer (the fixture's string predates the
///   code, which sends `kz_call_event:timestamp/1`, an integer);
/// - channel samples: `custom_channel_vars` holds the sample call's non-reserved CCVs. The
///   hand-written fixtures show `{}` while also showing `local_resource_id` (and, for bridges,
///   `original_number`), which KAZOO reads from the CCVs `Resource-ID` and `Original-Number`;
///   neither is in `call_command.reserved_ccv_keys`, so KAZOO's code sends them in
///   `custom_channel_vars` too;
/// - parking (spec §14): `caller_id_number` (the fixture's `caller_id_Number` is a typo: the key
///   is the normalised `Caller-ID-Number`) and a string `parking_slot` (callflow publishes
///   `kz_term:to_binary(SlotNumber)`).
///
/// Each rewrite first checks that the fixture still has the quirk, so a corrected fixture fails
/// here instead of being rewritten into something else.
fn expected_from_fixture(sample_id: &str, mut fixture: Value) -> Value {
    let f = object(&mut fixture);
    if sample_id.starts_with("webhooks_channel_") {
        let ts = f["timestamp"]
            .as_str()
            .expect("fixture timestamp is a string");
        let ts: i64 = ts.parse().expect("fixture timestamp is numeric");
        f.insert("timestamp".into(), ts.into());

        assert_eq!(f["custom_channel_vars"], Value::Object(Map::new()));
        let mut ccvs = Map::new();
        ccvs.insert("Resource-ID".into(), f["local_resource_id"].clone());
        if let Some(original) = f.get("original_number") {
            ccvs.insert("Original-Number".into(), original.clone());
        }
        f.insert("custom_channel_vars".into(), Value::Object(ccvs));
    }
    if sample_id == "webhooks_parking" {
        let number = f
            .remove("caller_id_Number")
            .expect("fixture has the caller_id_Number typo");
        f.insert("caller_id_number".into(), number);
        let slot = f["parking_slot"]
            .as_i64()
            .expect("fixture parking_slot is an integer");
        f.insert("parking_slot".into(), slot.to_string().into());
    }
    fixture
}

fn assert_samples_match(sample_id: &str, module: &dyn WebhookModule) {
    let fixtures = fixture(sample_id);
    let ours = module.samples();
    assert_eq!(
        ours.len(),
        fixtures.len(),
        "{sample_id}: one sample per fixture sample"
    );
    for (i, (ours, theirs)) in ours.iter().zip(fixtures).enumerate() {
        let expected = expected_from_fixture(sample_id, theirs);
        assert_eq!(
            ours, &expected,
            "{sample_id}[{i}] differs from KAZOO's sample\n ours: {ours:#}\n want: {expected:#}"
        );
    }
}

#[test]
fn channel_create_samples_match_kazoo() {
    assert_samples_match("webhooks_channel_create", &ChannelCreate);
}

#[test]
fn channel_answer_samples_match_kazoo() {
    assert_samples_match("webhooks_channel_answer", &ChannelAnswer);
}

#[test]
fn channel_bridge_samples_match_kazoo() {
    assert_samples_match("webhooks_channel_bridge", &ChannelBridge);
}

#[test]
fn channel_destroy_samples_match_kazoo() {
    assert_samples_match("webhooks_channel_destroy", &ChannelDestroy);
}

#[test]
fn notifications_samples_match_kazoo() {
    assert_samples_match("webhooks_notifications", &Notifications);
}

#[test]
fn object_samples_match_kazoo() {
    assert_samples_match("webhooks_object", &Object::default());
}

#[test]
fn parking_samples_match_kazoo() {
    assert_samples_match("webhooks_parking", &Parking);
}

#[test]
fn registry_serves_exactly_kazoos_sample_ids() {
    let registry = webhooks_modules::kazoo_registry(&[]);
    assert_eq!(
        registry.sample_ids(),
        [
            "webhooks_channel_answer",
            "webhooks_channel_bridge",
            "webhooks_channel_create",
            "webhooks_channel_destroy",
            "webhooks_notifications",
            "webhooks_object",
            "webhooks_parking",
        ]
    );
}
