"""santasyncservice: the sync client. `transport` speaks HTTP as Santa does (§2),
`protocol` builds and parses each stage's bodies (§3, §9), `stages` runs a full sync (§1)."""
