//! End-to-end tests of the `factorydash` binary over real HTTP on 127.0.0.1, on the
//! bundled NIST recording, with the in-memory store and a real PostgreSQL.

mod accounts;
mod agents;
mod agents_page;
mod alarm_rules_page;
mod alarms;
mod api;
mod browser;
mod credentials;
mod email;
mod end_to_end;
mod export;
mod faults;
mod hardening;
mod history;
mod hostile;
mod identity;
mod install;
mod layout;
mod live;
mod oee;
mod reasons;
mod records;
mod security;
mod shifts_page;
mod simulate;
mod support;
mod thresholds;
mod tls;
mod tools;
mod views;
