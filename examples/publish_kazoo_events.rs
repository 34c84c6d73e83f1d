//! Publishes KAZOO-shaped events to RabbitMQ, as KAZOO itself would, to try a running
//! `webhooksd` by hand: every module's sample events (channel create/answer/bridge/destroy,
//! the 36 notifications, object document changes, parking), each on KAZOO's exchange with
//! KAZOO's routing key.
//!
//! ```text
//! cargo run --example publish_kazoo_events -- [--amqp-url URL] [--times N] [--module ID]...
//! ```
//!
//! The URL defaults to `$AMQP_URL`, then to a local broker's default vhost. Each sample is
//! published once, or `--times` times (each copy with its own `Msg-ID`); `--module` (repeatable)
//! limits it to some modules. Every publish is confirmed by the broker before the next.

use std::error::Error;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use serde_json::{json, Value};
use webhooks_core::Event;

use webhooks_modules::MODULES_WITH_SAMPLE_EVENTS as MODULES;

struct Args {
    url: String,
    times: usize,
    modules: Vec<String>,
}

fn usage() -> String {
    format!(
        "usage: publish_kazoo_events [--amqp-url URL] [--times N] [--module ID]...\n\
         modules: {}",
        MODULES.join(", ")
    )
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        url: std::env::var("AMQP_URL")
            .unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into()),
        times: 1,
        modules: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or(format!("{flag} needs a value\n{}", usage()))
        };
        match flag.as_str() {
            "--amqp-url" => args.url = value()?,
            "--times" => {
                args.times = value()?
                    .parse()
                    .map_err(|e| format!("--times: {e}\n{}", usage()))?
            }
            "--module" => {
                let m = value()?;
                if !MODULES.contains(&m.as_str()) {
                    return Err(format!("unknown module {m:?}\n{}", usage()));
                }
                args.modules.push(m);
            }
            "-h" | "--help" => return Err(usage()),
            other => return Err(format!("unknown argument {other:?}\n{}", usage())),
        }
    }
    if args.modules.is_empty() {
        args.modules = MODULES.iter().map(|m| (*m).to_owned()).collect();
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let args = match parse_args() {
        Ok(a) => a,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let connection = Connection::connect(&args.url, ConnectionProperties::default()).await?;
    let channel = connection.create_channel().await?;
    // The exchanges may not exist yet if no KAZOO application (nor webhooksd) ran on this
    // broker; declaring them as KAZOO does is harmless when they do.
    webhooks_amqp::declare_kazoo_exchanges(&channel).await?;
    channel
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    let properties = BasicProperties::default().with_content_type("application/json".into());

    let mut sent = 0;
    for module in &args.modules {
        for sample in webhooks_modules::sample_events(module).unwrap_or_default() {
            for copy in 0..args.times {
                let message = with_copy_msg_id(&sample, copy, args.times);
                let event = Event::from_value(message.clone()).map_err(|e| e.to_string())?;
                let route = webhooks_amqp::route_for(&event)
                    .ok_or_else(|| format!("no KAZOO routing key for a {module} sample"))?;
                let confirm = channel
                    .basic_publish(
                        route.exchange.into(),
                        route.routing_key.as_str().into(),
                        BasicPublishOptions::default(),
                        message.to_string().as_bytes(),
                        properties.clone(),
                    )
                    .await?
                    .await?;
                if !confirm.is_ack() {
                    return Err(format!("the broker refused {}", route.routing_key).into());
                }
                sent += 1;
                println!(
                    "{:<14} {:<72} {}/{}",
                    route.exchange,
                    route.routing_key,
                    event.category().unwrap_or_default(),
                    event.name().unwrap_or_default()
                );
            }
        }
    }
    println!("published {sent} messages to {}", redact(&args.url));
    connection.close(200, "done".into()).await?;
    Ok(())
}

/// Copies of a sample differ by `Msg-ID`, so a receiver can tell them apart.
fn with_copy_msg_id(sample: &Value, copy: usize, times: usize) -> Value {
    let mut message = sample.clone();
    if times > 1 {
        let base = sample["Msg-ID"].as_str().unwrap_or("sample");
        message["Msg-ID"] = json!(format!("{base}-{copy}"));
    }
    message
}

/// The URL without its password, for printing.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let user = &url[scheme + 3..at];
            let user = user.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}
