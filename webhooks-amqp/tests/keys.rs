//! The routing keys we publish with agree with the bindings the modules consume with: every
//! sample event, routed as KAZOO routes it, reaches a binding of its own module.

use webhooks_amqp::keys::{topic_matches, NOTIFICATION_KEYS};
use webhooks_amqp::{exchanges, route_for};
use webhooks_core::{Event, WebhookModule};

#[test]
fn topic_matching_works_like_rabbitmq() {
    assert!(topic_matches(
        "call.CHANNEL_CREATE.*",
        "call.CHANNEL_CREATE.abc"
    ));
    assert!(!topic_matches(
        "call.CHANNEL_CREATE.*",
        "call.CHANNEL_CREATE.a.b"
    ));
    assert!(topic_matches("#", "doc_created.account%2F0e.user.x"));
    assert!(topic_matches(
        "*.webhooks.webhook.*",
        "doc_edited.webhooks.webhook.h1"
    ));
}

#[test]
fn every_sample_routes_to_a_binding_of_its_module() {
    for module in webhooks_modules::kazoo_modules(&[]) {
        let id = module.init().id;
        let Some(samples) = webhooks_modules::sample_events(&id) else {
            continue;
        };
        let bindings = module.bindings_and_responders();
        for sample in samples {
            let event = Event::from_value(sample).unwrap();
            let route = route_for(&event).unwrap_or_else(|| panic!("{id}: no route"));
            assert!(
                bindings.iter().any(|b| b.exchange == route.exchange
                    && topic_matches(&b.routing_key, &route.routing_key)),
                "{id}: {} {} matches no binding",
                route.exchange,
                route.routing_key
            );
        }
    }
}

#[test]
fn notification_keys_are_the_ones_the_module_binds() {
    let mut bound: Vec<String> = webhooks_modules::Notifications
        .bindings_and_responders()
        .into_iter()
        .inspect(|b| assert_eq!(b.exchange, exchanges::NOTIFICATIONS))
        .map(|b| b.routing_key)
        .collect();
    let mut ours: Vec<String> = NOTIFICATION_KEYS
        .iter()
        .map(|(_, k)| (*k).to_owned())
        .collect();
    bound.sort();
    ours.sort();
    assert_eq!(ours, bound);
}
