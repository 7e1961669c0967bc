package debezium

// SchemaCompilations reports how many schemas d has compiled (tests check
// each distinct schema is parsed once).
func SchemaCompilations(d *Decoder) int64 {
	d.plans.mu.RLock()
	defer d.plans.mu.RUnlock()
	return d.plans.compiled
}
