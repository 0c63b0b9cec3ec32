package ship

import (
	"context"
	"strings"

	"github.com/skiffdeploy/skiff/inventory"
)

// withoutShared drops the shared entries (and what lies under them) from a local manifest: they are linked,
// not shipped.
func withoutShared(m *Manifest, shared []string) (*Manifest, error) {
	if len(shared) == 0 {
		return m, nil
	}
	var keep []Entry
	for _, e := range m.Entries {
		drop := false
		for _, s := range shared {
			if e.Path == s || strings.HasPrefix(e.Path, s+"/") {
				drop = true
				break
			}
		}
		if !drop {
			keep = append(keep, e)
		}
	}
	out, err := newManifest(keep, m.deferred)
	if err != nil {
		return nil, err
	}
	out.stamps = m.stamps
	return out, nil
}

// ScanApp scans an app's local source tree once for all hosts: its exclude patterns are honoured and its
// shared entries left out, since those are linked on the target, not shipped. cache (nil for none) is the
// tree's hash cache (see HashCache); the caller saves it once the deploy is done, off the deploy's path. With
// deferHashing, for a deploy to one host, files the cache does not know are hashed by Ship (see ScanDeferred).
func ScanApp(ctx context.Context, dir string, app *inventory.App, cache *HashCache, deferHashing bool) (*Manifest, error) {
	scan := ScanCached
	if deferHashing {
		scan = ScanDeferred
	}
	m, err := scan(ctx, dir, app.Exclude, cache)
	if err != nil {
		return nil, err
	}
	return withoutShared(m, app.Shared)
}
