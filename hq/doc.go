// Package hq is the HQ side of edgepos: it consumes every terminal's uploads
// from MQTT and stores them exactly once (idempotent by (store, terminal,
// seq) and event id, acked only after the transaction commits), keeps the
// projections operators look at (fleet, sales, inventory, coupon ledger and
// conflicts), signs coupons, and publishes the change feed (catalog, tax
// classes, members, coupon keys and revocations, store config, pickup
// orders) to the stores. It serves an operator HTTP API and a small
// dashboard.
//
// Storage is behind the Store interface: hq/sqlitestore (default) and
// hq/pgstore (PostgreSQL, for several hq-ingest processes sharing
// $share/hq/… on a clustered broker). The protocol is sync/wire's; DESIGN.md
// "Sync protocol" is the map.
package hq
