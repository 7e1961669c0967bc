// Package debezium decodes Debezium MySQL change events, exactly as Debezium
// Server's Pub/Sub sink publishes them (JSON, with or without the schema
// envelope, optionally flattened by ExtractNewRecordState), into cdc.Change
// values whose rows are canonical JSON.
//
// The hot path does not build maps of the message: a small JSON scanner walks
// the payload once per row image and writes canonical values straight into a
// buffer, driven by a per-field plan compiled once per distinct schema.
package debezium
