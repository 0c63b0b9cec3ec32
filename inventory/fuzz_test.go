package inventory

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzParse checks that Parse never panics and that what it accepts is
// usable: it marshals, selects, resolves jump chains and splits batches.
// Seeds are in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := Options{Home: "/home/fuzz"}.Parse("hosts.toml", data)
		if err != nil {
			var ie *Error
			if !errors.As(err, &ie) || ie.File != "hosts.toml" {
				t.Fatalf("error %v (%T) is not an *Error about hosts.toml", err, err)
			}
			return
		}
		if _, err := json.Marshal(inv); err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		all, err := inv.Select(nil)
		if err != nil || len(all) != len(inv.Hosts) {
			t.Fatalf("Select(nil) = %d hosts, %v; want %d", len(all), err, len(inv.Hosts))
		}
		for _, h := range all {
			if chain := inv.JumpChain(h); len(chain) >= len(inv.Hosts) {
				t.Fatalf("JumpChain(%s) has %d hosts of %d", h.Name, len(chain), len(inv.Hosts))
			}
		}
		for _, a := range inv.Apps {
			hosts, err := inv.AppHosts(a, nil)
			if err != nil {
				t.Fatalf("AppHosts(%s): %v", a.Name, err)
			}
			seen := 0
			for _, b := range a.Rollout.Batches(len(hosts)) {
				for _, i := range b {
					if i != seen {
						t.Fatalf("Batches(%d) with %q: index %d, want %d", len(hosts), a.Rollout.Batch, i, seen)
					}
					seen++
				}
			}
			if seen != len(hosts) {
				t.Fatalf("Batches(%d) with %q covers %d hosts", len(hosts), a.Rollout.Batch, seen)
			}
		}
	})
}
