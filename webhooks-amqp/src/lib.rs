//! webhooks-amqp
