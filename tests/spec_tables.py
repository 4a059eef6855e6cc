"""Tables written from the spec, shared by the tests that check santacore against them (never from
santacore's own code)."""

# §4.1: the event keys in proto field order, with their proto types.
SPEC_EVENT_FIELDS = (
    ("file_sha256", "string"),
    ("file_path", "string"),
    ("file_name", "string"),
    ("executing_user", "string"),
    ("execution_time", "double"),
    ("logged_in_users", "list<string>"),
    ("current_sessions", "list<string>"),
    ("decision", "enum"),
    ("file_bundle_id", "string"),
    ("file_bundle_path", "string"),
    ("file_bundle_executable_rel_path", "string"),
    ("file_bundle_name", "string"),
    ("file_bundle_version", "string"),
    ("file_bundle_version_string", "string"),
    ("file_bundle_hash", "string"),
    ("file_bundle_hash_millis", "uint32"),
    ("file_bundle_binary_count", "uint32"),
    ("pid", "int32"),
    ("ppid", "int32"),
    ("parent_name", "string"),
    ("team_id", "string"),
    ("signing_id", "string"),
    ("cdhash", "string"),
    ("quarantine_data_url", "string"),
    ("quarantine_referer_url", "string"),
    ("quarantine_timestamp", "uint32"),
    ("quarantine_agent_bundle_id", "string"),
    ("signing_chain", "list<Certificate>"),
)
