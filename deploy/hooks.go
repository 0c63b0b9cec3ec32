package deploy

import (
	"github.com/skiffdeploy/skiff/release"
	"github.com/skiffdeploy/skiff/remote"
)

// hookCommand runs one user hook in the release directory. The hook text is the user's shell, run as
// sh -c; skiff's own values reach it only as inline environment variables.
func hookCommand(l release.Layout, app, hook, id, prev string) remote.Command {
	return remote.Command{
		Script: hook,
		Dir:    l.Release(id),
		Env:    []string{"SKIFF_APP=" + app, "SKIFF_RELEASE=" + id, "SKIFF_PREVIOUS=" + prev, "SKIFF_PATH=" + l.Path},
	}
}
