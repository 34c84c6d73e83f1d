//! Crossbar-style validation of webhook documents (spec §3.5). Filled in below.
