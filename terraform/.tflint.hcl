# Only the bundled terraform ruleset: no plugin downloads.
config {
  call_module_type = "none"
}

plugin "terraform" {
  enabled = true
  preset  = "recommended"
}
