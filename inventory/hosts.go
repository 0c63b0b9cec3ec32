package inventory

import (
	"sort"
	"strconv"
	"strings"
)

// Built-in defaults.
const (
	defaultPort         = 22
	defaultKeepReleases = 5
	defaultKeepImages   = 3
	defaultParallel     = 10
	defaultBatch        = "100%"
)

// build resolves the whole inventory.
func (b *builder) build() *Inventory {
	inv := &Inventory{
		File:       b.file,
		Hosts:      map[string]*Host{},
		Registries: map[string]*Registry{},
		Apps:       map[string]*App{},
		Schedules:  []*Schedule{},
	}
	inv.Defaults = b.defaults()
	hostNames := b.inFileOrder("hosts", keysOf(b.raw.hosts))
	jumpFromDefaults := map[string]bool{}
	for _, name := range hostNames {
		h, inherited := b.host(name, b.raw.hosts[name], inv.Defaults)
		inv.Hosts[name] = h
		jumpFromDefaults[name] = inherited
	}
	b.checkGroups(inv, hostNames)
	b.checkJumps(inv, hostNames, jumpFromDefaults)
	b.checkDuplicateHosts(inv, hostNames)
	for _, name := range b.inFileOrder("registries", keysOf(b.raw.registries)) {
		inv.Registries[name] = b.registry(name, b.raw.registries[name])
	}
	appNames := b.inFileOrder("apps", keysOf(b.raw.apps))
	for _, name := range appNames {
		inv.Apps[name] = b.app(inv, name, b.raw.apps[name])
	}
	b.checkSharedPaths(inv, appNames)
	for i, s := range b.raw.schedules {
		if sc := b.schedule(inv, i, s); sc != nil {
			inv.Schedules = append(inv.Schedules, sc)
		}
	}
	for i, n := range b.raw.notify {
		inv.Notify = append(inv.Notify, b.notify(i, n))
	}
	b.serveAndTriggers(inv)
	return inv
}

// defaults resolves the [defaults] table.
func (b *builder) defaults() Defaults {
	r := b.raw.defaults
	p := newPath("defaults")
	d := Defaults{
		User:           b.str(p.child("user"), r.User),
		Port:           b.port(p.child("port"), r.Port, defaultPort),
		KnownHosts:     b.str(p.child("known_hosts"), r.KnownHosts),
		ConnectTimeout: b.duration(p.child("connect_timeout"), r.ConnectTimeout, timeSeconds(10), false),
		Keepalive:      b.duration(p.child("keepalive"), r.Keepalive, timeSeconds(15), true),
		Jump:           b.str(p.child("jump"), r.Jump),
	}
	if d.User != "" {
		b.word(p.child("user"), d.User)
	}
	d.IdentityFiles = []string{}
	for _, f := range b.strs(p.child("identity_files"), r.IdentityFiles) {
		d.IdentityFiles = append(d.IdentityFiles, b.local(p.child("identity_files"), f))
	}
	if d.KnownHosts != "" {
		d.KnownHosts = b.local(p.child("known_hosts"), d.KnownHosts)
	}
	return d
}

// host resolves one [hosts.NAME] table over the defaults. It also reports
// whether the host's jump came from the defaults.
func (b *builder) host(name string, r *rawHost, d Defaults) (*Host, bool) {
	p := newPath("hosts", name)
	b.name(p, "host", name)
	if name == "all" {
		b.ps.add(p, `"all" is the group of every host and cannot name a host`)
	}
	h := &Host{
		Name:           name,
		User:           d.User,
		Port:           b.port(p.child("port"), r.Port, d.Port),
		IdentityFiles:  append([]string{}, d.IdentityFiles...),
		KnownHosts:     d.KnownHosts,
		ConnectTimeout: b.duration(p.child("connect_timeout"), r.ConnectTimeout, d.ConnectTimeout, false),
		Keepalive:      b.duration(p.child("keepalive"), r.Keepalive, d.Keepalive, true),
		Jump:           d.Jump,
	}
	inherited := !r.Jump.set && d.Jump != ""
	if inherited && d.Jump == name {
		// The default jump host itself is reached directly.
		h.Jump, inherited = "", false
	}
	if !r.Address.set {
		b.ps.add(p.child("address"), "is required")
	} else {
		h.Address = b.str(p.child("address"), r.Address)
		if _, ok := r.Address.v.(string); ok {
			b.word(p.child("address"), h.Address)
		}
	}
	if r.User.set {
		h.User = b.str(p.child("user"), r.User)
		if h.User != "" {
			b.word(p.child("user"), h.User)
		}
	}
	if r.IdentityFiles.set {
		h.IdentityFiles = []string{}
		for _, f := range b.strs(p.child("identity_files"), r.IdentityFiles) {
			h.IdentityFiles = append(h.IdentityFiles, b.local(p.child("identity_files"), f))
		}
	}
	if r.KnownHosts.set {
		h.KnownHosts = b.local(p.child("known_hosts"), b.str(p.child("known_hosts"), r.KnownHosts))
	}
	if r.Jump.set {
		h.Jump = b.str(p.child("jump"), r.Jump)
	}
	h.Groups = []string{}
	for _, g := range b.strs(p.child("groups"), r.Groups) {
		if b.name(p.child("groups"), "group", g) && g == "all" {
			b.ps.add(p.child("groups"), `"all" is implicit and cannot be listed`)
		}
		h.Groups = append(h.Groups, g)
	}
	return h, inherited
}

// checkGroups refuses groups that have the name of a host, since a name in
// app.hosts or --hosts would then be ambiguous.
func (b *builder) checkGroups(inv *Inventory, names []string) {
	for _, name := range names {
		for _, g := range inv.Hosts[name].Groups {
			if _, clash := inv.Hosts[g]; clash {
				b.ps.add(newPath("hosts", name, "groups"), "group %q has the name of a host", g)
			}
		}
	}
}

// checkJumps checks that every jump names a host and that no chain of jumps
// comes back to where it started.
func (b *builder) checkJumps(inv *Inventory, names []string, fromDefaults map[string]bool) {
	for _, name := range names {
		h := inv.Hosts[name]
		if h.Jump == "" {
			continue
		}
		p := newPath("hosts", name, "jump")
		if fromDefaults[name] {
			p = newPath("defaults", "jump")
		}
		if _, ok := inv.Hosts[h.Jump]; !ok {
			b.ps.add(p, "unknown host %q", h.Jump)
			continue
		}
		if h.Jump == name {
			b.ps.add(p, "host %q cannot jump through itself", name)
			continue
		}
		chain := []string{name}
		for cur := inv.Hosts[h.Jump]; cur != nil && len(chain) <= len(inv.Hosts); cur = inv.Hosts[cur.Jump] {
			chain = append(chain, cur.Name)
			if cur.Name == name {
				b.ps.add(p, "jump loop: %s", strings.Join(chain, " -> "))
				break
			}
			if cur.Jump == "" {
				break
			}
		}
	}
}

// checkDuplicateHosts refuses two hosts that are the same SSH endpoint.
func (b *builder) checkDuplicateHosts(inv *Inventory, names []string) {
	seen := map[string]string{}
	for _, name := range names {
		h := inv.Hosts[name]
		if h.Address == "" {
			continue
		}
		k := strings.ToLower(h.Address) + "\x00" + strconv.Itoa(h.Port) + "\x00" + h.User
		if other, dup := seen[k]; dup {
			b.ps.add(newPath("hosts", name, "address"),
				"same address, port and user as host %q (%s)", other, endpoint(h))
			continue
		}
		seen[k] = name
	}
}

func endpoint(h *Host) string {
	s := h.Address + ":" + strconv.Itoa(h.Port)
	if h.User != "" {
		s = h.User + "@" + s
	}
	return s
}

// registry resolves one [registries.NAME] table.
func (b *builder) registry(name string, r *rawRegistry) *Registry {
	p := newPath("registries", name)
	b.name(p, "registry", name)
	reg := &Registry{
		Name:        name,
		Server:      b.str(p.child("server"), r.Server),
		Username:    b.str(p.child("username"), r.Username),
		PasswordEnv: b.str(p.child("password_env"), r.PasswordEnv),
	}
	if !r.Server.set {
		b.ps.add(p.child("server"), "is required")
	} else if _, ok := r.Server.v.(string); ok && b.word(p.child("server"), reg.Server) && strings.Contains(reg.Server, "/") {
		b.ps.add(p.child("server"), "%q must be a host name with an optional port, not a URL", reg.Server)
	}
	b.credentials(p, reg.Username, reg.PasswordEnv, r.Username.set, r.PasswordEnv.set)
	return reg
}

// credentials checks a username/password_env pair: both or neither.
func (b *builder) credentials(p keyPath, user, env string, userSet, envSet bool) {
	if userSet && user != "" {
		b.word(p.child("username"), user)
	}
	if envSet {
		b.envName(p.child("password_env"), env)
	}
	switch {
	case userSet && !envSet:
		b.ps.add(p.child("password_env"), "is required when username is set")
	case envSet && !userSet:
		b.ps.add(p.child("username"), "is required when password_env is set")
	}
}

// inFileOrder sorts the names of a table of named tables by the line they
// appear on, then by name, so that problems are found in reading order.
func (b *builder) inFileOrder(table string, names []string) []string {
	line := func(n string) int { return lineRank(b.raw.index.lineOf(newPath(table, n))) }
	sort.Slice(names, func(i, j int) bool {
		li, lj := line(names[i]), line(names[j])
		if li != lj {
			return li < lj
		}
		return names[i] < names[j]
	})
	return names
}

func keysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// refs checks that every name in list is a host, a group or "all".
func (b *builder) refs(inv *Inventory, p keyPath, list []string) {
	groups := inv.Groups()
	for _, n := range list {
		if _, ok := inv.Hosts[n]; ok {
			continue
		}
		if _, ok := groups[n]; ok {
			continue
		}
		b.ps.add(p, "unknown host or group %q", n)
	}
}
