package inventory

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// AllGroup is the implicit group of every host.
const AllGroup = "all"

// Groups returns every group, including "all", with the sorted names of its
// hosts.
func (inv *Inventory) Groups() map[string][]string {
	groups := map[string][]string{AllGroup: {}}
	for name, h := range inv.Hosts {
		groups[AllGroup] = append(groups[AllGroup], name)
		for _, g := range h.Groups {
			if !contains(groups[g], name) {
				groups[g] = append(groups[g], name)
			}
		}
	}
	for _, names := range groups {
		sort.Strings(names)
	}
	return groups
}

// Select returns the hosts named by names, each a host name, a group name
// or "all"; no names means all hosts. The result is sorted by name and has
// no duplicates. A name that is neither a host nor a group is an error
// wrapping ErrUnknownName.
func (inv *Inventory) Select(names []string) ([]*Host, error) {
	if len(names) == 0 {
		names = []string{AllGroup}
	}
	groups := inv.Groups()
	picked := map[string]bool{}
	for _, n := range names {
		if _, ok := inv.Hosts[n]; ok {
			picked[n] = true
			continue
		}
		members, ok := groups[n]
		if !ok {
			return nil, fmt.Errorf("%w %q", ErrUnknownName, n)
		}
		for _, m := range members {
			picked[m] = true
		}
	}
	out := make([]*Host, 0, len(picked))
	for n := range picked {
		out = append(out, inv.Hosts[n])
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// AppHosts returns the hosts app is deployed to, sorted by name. When filter
// is not empty, only those of its hosts that filter also selects are kept,
// so that `--hosts web1` narrows a deploy without widening it.
func (inv *Inventory) AppHosts(app *App, filter []string) ([]*Host, error) {
	if len(app.Hosts) == 0 {
		return []*Host{}, nil
	}
	hosts, err := inv.Select(app.Hosts)
	if err != nil {
		return nil, fmt.Errorf("app %q: %w", app.Name, err)
	}
	if len(filter) == 0 {
		return hosts, nil
	}
	keep, err := inv.Select(filter)
	if err != nil {
		return nil, err
	}
	in := map[string]bool{}
	for _, h := range keep {
		in[h.Name] = true
	}
	out := hosts[:0]
	for _, h := range hosts {
		if in[h.Name] {
			out = append(out, h)
		}
	}
	return out, nil
}

// JumpChain returns the hosts to go through to reach h, outermost first:
// for web1 -> bastion -> gateway it returns [gateway, bastion]. It is empty
// for a host reached directly. A chain that loops or names an unknown host,
// which a loaded inventory never has, ends where the problem starts.
func (inv *Inventory) JumpChain(h *Host) []*Host {
	var chain []*Host
	seen := map[string]bool{h.Name: true}
	for cur := h; cur.Jump != ""; {
		next, ok := inv.Hosts[cur.Jump]
		if !ok || seen[next.Name] {
			break
		}
		seen[next.Name] = true
		chain = append(chain, next)
		cur = next
	}
	for i, j := 0, len(chain)-1; i < j; i, j = i+1, j-1 {
		chain[i], chain[j] = chain[j], chain[i]
	}
	return chain
}

// Batches splits n hosts, numbered 0 to n-1, into batches of the size Batch
// gives: a count, or a percentage of n rounded up (at least one host). An
// empty or malformed Batch means one batch of everything.
func (r Rollout) Batches(n int) [][]int {
	if n <= 0 {
		return nil
	}
	size := n
	b := strings.TrimSpace(r.Batch)
	if num, pct := strings.CutSuffix(b, "%"); pct {
		if p, err := strconv.Atoi(num); err == nil && p > 0 && p < 100 {
			size = (n*p + 99) / 100
		}
	} else if c, err := strconv.Atoi(b); err == nil && c > 0 {
		size = c
	}
	size = max(1, min(size, n))
	out := make([][]int, 0, (n+size-1)/size)
	for start := 0; start < n; start += size {
		batch := make([]int, 0, size)
		for i := start; i < min(start+size, n); i++ {
			batch = append(batch, i)
		}
		out = append(out, batch)
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
