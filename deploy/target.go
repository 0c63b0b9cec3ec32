package deploy

import (
	"github.com/skiffdeploy/skiff/inventory"
	"github.com/skiffdeploy/skiff/remote"
)

// Target turns an inventory host into what remote dials, following its jump chain. The inventory has already
// rejected unknown jump hosts and loops, so the chain is finite.
func Target(inv *inventory.Inventory, h *inventory.Host) *remote.Target {
	t := &remote.Target{
		Name:           h.Name,
		Address:        h.Address,
		User:           h.User,
		Port:           h.Port,
		IdentityFiles:  h.IdentityFiles,
		KnownHosts:     h.KnownHosts,
		ConnectTimeout: h.ConnectTimeout.Duration,
		Keepalive:      h.Keepalive.Duration,
	}
	if h.Jump != "" {
		if j, ok := inv.Hosts[h.Jump]; ok {
			t.Jump = Target(inv, j)
		}
	}
	return t
}
