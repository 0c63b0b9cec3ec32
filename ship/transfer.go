package ship

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"time"

	"github.com/skiffdeploy/skiff/release"
	"github.com/skiffdeploy/skiff/remote"
)

// ErrNoManifest is returned (wrapped) by ReadManifest when the target has no manifest for a release, for
// example one shipped by an older tool; callers then ship without a base.
var ErrNoManifest = errors.New("no manifest on the target")

// ShipOptions tune Ship.
type ShipOptions struct {
	// Concurrency is how many files are in flight at once over SFTP; 0 means DefaultConcurrency.
	Concurrency int
	// SFTPOnly sends every file over SFTP even where one tar stream would be faster, for targets whose tar
	// must not be trusted.
	SFTPOnly bool
	// DryRun computes what would be done and reports it through Plan without touching the target.
	DryRun bool
	// Plan receives each operation of a dry run: op is one of the Op* constants, path is relative to the new
	// release (or, for OpBase and OpManifest, a path on the target).
	Plan func(op string, path string)
	// Cloned says the release directory was already made from base with CloneReleaseCommand or CloneSFTP.
	Cloned bool
	// ClonedExact says the clone holds exactly the base manifest's entries, its directories with their manifest
	// modes and its symlinks as listed (CloneSFTP): nothing of the base is made again.
	ClonedExact bool
	// Progress, when not nil, counts the files and bytes sent as they go, for live displays.
	Progress *Counter
	// GNUTar says the target's tar is known to be GNU tar (TarProbeCommand): an extraction that follows a prepare
	// script does not ask again, and a failed one is not put down to another tar.
	GNUTar bool
	// Copy makes the files taken from base copies (`cp --reflink=auto`) instead of hard links, for apps whose
	// hooks or builds run in the release and could write through a link into every release sharing it.
	Copy bool
}

// The operations a dry run reports through ShipOptions.Plan, in the order Ship performs them.
const (
	OpBase     = "base"     // the new release starts from the files this release's manifest lists (links or copies)
	OpRemove   = "remove"   // an entry of the base that the new release does not have (or has with another type)
	OpMkdir    = "mkdir"    // a directory is created
	OpSymlink  = "symlink"  // a symlink is (re)created
	OpChmod    = "chmod"    // a mode changes (a file's is copied on the target first, never changed in place)
	OpUpload   = "upload"   // a file's content is sent
	OpManifest = "manifest" // the manifest is stored
)

// DefaultConcurrency is how many files Ship keeps in flight over SFTP when ShipOptions.Concurrency is 0.
const DefaultConcurrency = 64

// ShipStats says what Ship did (or, in a dry run, would do).
type ShipStats struct {
	// Files and Bytes count the files whose content was sent and their sizes.
	Files, Bytes int64
	// Reused counts files taken from the base release without sending them.
	Reused int64
	// Removed counts entries of the base release left out of the new one.
	Removed int64
	// Rehashed counts the bytes hashed again while they were sent, because no stamp from Scan vouched for
	// their file any more (it was touched since, or the manifest did not come from Scan).
	Rehashed int64
	// Duration is the wall time of the whole transfer.
	Duration time.Duration
}

// Ship creates release id under layout on the target from the tree at localRoot, described by m (from Scan).
// The release is complete when Ship returns without error, but it is not live: switching current is done
// elsewhere.
//
// When base names a release whose manifest is baseManifest, the new release starts as what that manifest
// lists of base, and nothing else: its files as hard links (see CloneReleaseCommand), or as copies with
// ShipOptions.Copy (CopyReleaseCommand), and only the differences travel. The base release's inodes are never modified: a changed
// file replaces its link (SFTP uploads go to a temporary name and are renamed over it; tar's -U unlinks it
// first), and a mode-only change is copied on the target before chmod. With no base (or no baseManifest)
// every file is sent.
//
// Content goes as one tar stream when there are many files or many bytes and the target has GNU tar,
// otherwise over the shared SFTP client, ShipOptions.Concurrency files at a time. Every file sent must be what
// m says, so a source file edited since Scan fails the ship instead of poisoning the manifest: one whose size
// and modification time are those Scan saw when it hashed it, before and after the send, is taken as proof
// (rsync's quick check; Scan leaves out files modified too recently for it to hold), any other is hashed on
// the way and must match. The files a ScanDeferred manifest left unhashed are hashed up front when the base
// has them with the same size, since only their hash says whether they changed, or when they are few bytes;
// otherwise while they are sent. Finally the complete manifest is stored at layout.Manifest(id). On error the
// partial release is left for the caller to remove; it was never live.
func Ship(ctx context.Context, c release.Conn, localRoot string, m *Manifest, layout release.Layout, id string, base string,
	baseManifest *Manifest, opts ShipOptions) (*ShipStats, error) {
	start := time.Now()
	if err := layout.Validate(); err != nil {
		return nil, fmt.Errorf("ship: %w", err)
	}
	if !release.ValidReleaseID(id) {
		return nil, fmt.Errorf("ship: invalid release id %q", id)
	}
	if base != "" && !release.ValidReleaseID(base) {
		return nil, fmt.Errorf("ship %s: invalid base release id %q", id, base)
	}
	if base == id {
		return nil, fmt.Errorf("ship %s: a release cannot be its own base", id)
	}
	if m == nil {
		return nil, fmt.Errorf("ship %s: no manifest", id)
	}
	// Re-checked (and sorted) here because Ship builds paths and commands from it; m may be hand-made.
	stamps, deferred := m.stamps, m.deferred
	m, err := newManifest(m.Entries, deferred)
	if err != nil {
		return nil, fmt.Errorf("ship %s: %w", id, err)
	}
	if base == "" || baseManifest == nil {
		base, baseManifest = "", nil
	}
	if deferred != nil {
		var left bool
		if stamps, left, err = deferred.hashUpFront(ctx, localRoot, m, baseManifest, stamps); err != nil {
			return nil, fmt.Errorf("ship %s: %w", id, err)
		}
		if !left {
			deferred = nil
		}
	}
	p := newShipPlan(baseManifest, m, base)
	stats := &ShipStats{Reused: p.reused, Removed: p.removed}
	if opts.DryRun {
		stats.Files, stats.Bytes = p.uploadTotals()
		p.report(layout, id, opts.Plan)
		stats.Duration = time.Since(start)
		return stats, nil
	}
	s := &shipper{c: c, localRoot: localRoot, layout: layout, id: id, token: release.NewToken(), stats: stats,
		concurrency: opts.Concurrency, sftpOnly: opts.SFTPOnly, cloned: opts.Cloned, exact: opts.Cloned && opts.ClonedExact, copyFiles: opts.Copy, gnuTar: opts.GNUTar, started: time.Now().Truncate(time.Second), stamps: stamps, deferred: deferred,
		progress: opts.Progress}
	if s.progress == nil {
		s.progress = NewCounter()
	}
	files, bytes := p.uploadTotals()
	s.progress.filesTotal.Store(files)
	s.progress.bytesTotal.Store(bytes)
	if s.concurrency <= 0 {
		s.concurrency = DefaultConcurrency
	}
	if err := s.run(ctx, p, m); err != nil {
		return stats, fmt.Errorf("ship %s: %w", id, err)
	}
	stats.Duration = time.Since(start)
	return stats, nil
}

// shipper carries one Ship call's state.
type shipper struct {
	c           release.Conn
	localRoot   string
	layout      release.Layout
	id          string
	token       string // makes this ship's temporary names unique
	stats       *ShipStats
	concurrency int
	sftpOnly    bool
	cloned      bool
	exact       bool // the clone is exactly the base's manifest (ShipOptions.ClonedExact)
	copyFiles   bool
	gnuTar      bool
	started     time.Time            // the modification time of directories sent in a tar stream
	stamps      map[string]fileStamp // from Scan: files that still match are sent without hashing them again
	deferred    *deferredHashes      // files hashed while they are sent (ScanDeferred); nil when there are none
	settled     settledHashes        // their hashes
	progress    *Counter
}

// run does the work on the target. The manifest is written to a temporary name while the release is being
// built (once the files are sent, when some of its hashes are taken on the way), and only renamed into place
// once the release is complete.
func (s *shipper) run(ctx context.Context, p *shipPlan, m *Manifest) (err error) {
	complete := make(chan *Manifest, 1)
	staged := make(chan error, 1)
	stageCtx, cancelStage := context.WithCancel(ctx)
	go func() {
		select {
		case full := <-complete:
			staged <- s.stageManifest(stageCtx, full)
		case <-stageCtx.Done():
			staged <- stageCtx.Err()
		}
	}()
	if s.deferred == nil {
		complete <- m
	}
	defer func() {
		if err != nil {
			cancelStage()
		}
		stageErr := <-staged
		cancelStage()
		if err == nil && stageErr != nil {
			err = stageErr
		}
		if err == nil {
			err = s.commitManifest(ctx)
		}
		if err != nil && stageErr == nil {
			s.discardManifest(ctx)
		}
	}()

	nFiles, nBytes := p.uploadTotals()
	wantTar := !s.sftpOnly && (nFiles >= tarMinFiles || nBytes >= tarMinBytes)
	sent, fresh := false, false
	o := prepareOpts{cloned: s.cloned, copyFiles: s.copyFiles, relinked: s.exact}
	if s.cloned && !s.exact && !s.copyFiles && !wantTar && p.relinkBySFTP() {
		if err := s.relinkSFTP(ctx, p.old); err != nil {
			return err
		}
		o.relinked = true
	}
	script, work := p.prepareScript(s.layout, s.id, s.token, o)
	if wantTar && p.freshInTar() {
		if fresh, err = s.sendFresh(ctx, m); err != nil {
			return err
		}
		// Without GNU tar on the target the release directory is gone again: the prepare script makes it.
		sent, wantTar = fresh, fresh
	}
	switch {
	case sent:
	case wantTar && len(script) <= maxInlinePrepare:
		if sent, err = s.prepareAndExtract(ctx, script, p.upload); err != nil {
			return err
		}
		wantTar = false // prepared: either sent, or the target has no GNU tar
	case wantTar || work:
		if wantTar {
			o.detectTar = true
			script, _ = p.prepareScript(s.layout, s.id, s.token, o)
		}
		res, err := s.c.Run(ctx, remote.Command{Argv: []string{"sh", "-s"}, Stdin: bytes.NewReader(script)})
		if err != nil {
			return fmt.Errorf("prepare release: %w", err)
		}
		wantTar = wantTar && bytes.Contains(res.Stdout, []byte(tarMarker+"\n"))
	}
	if len(p.upload) > 0 && !sent {
		if wantTar {
			err = s.sendTar(ctx, p.upload)
		} else {
			err = s.sendSFTP(ctx, p.upload)
		}
		if err != nil {
			return err
		}
	}
	if s.deferred != nil {
		full, err := s.settled.complete(m, s.deferred)
		if err != nil {
			return err
		}
		complete <- full
	}
	if script := p.finishScript(s.layout, s.id); script != nil && !fresh {
		if _, err := s.c.Run(ctx, remote.Command{Argv: []string{"sh", "-s"}, Stdin: bytes.NewReader(script)}); err != nil {
			return fmt.Errorf("set directory modes: %w", err)
		}
	}
	return nil
}

// manifestTemp is where the manifest of the release being shipped is staged.
func (s *shipper) manifestTemp() string { return shipTempName(s.layout.Manifest(s.id), s.token) }

// stageManifest writes m to its temporary name, creating the manifests directory if this is the target's first
// release (the prepare script, running at the same time, creates it too).
func (s *shipper) stageManifest(ctx context.Context, m *Manifest) error {
	client, err := s.c.SFTP(ctx)
	if err != nil {
		return fmt.Errorf("store manifest: %w", err)
	}
	tmp := s.manifestTemp()
	if err := client.MkdirAll(s.layout.Manifests()); err != nil {
		return fmt.Errorf("store manifest: create %s: %w", s.layout.Manifests(), err)
	}
	f, err := client.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL)
	if err != nil {
		return fmt.Errorf("store manifest: %w", err)
	}
	err = m.Encode(remote.ContextWriter(ctx, f))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = client.Remove(tmp)
		return fmt.Errorf("store manifest %s: %w", tmp, err)
	}
	return nil
}

// commitManifest renames the staged manifest into place, so that a reader never sees half of one.
func (s *shipper) commitManifest(ctx context.Context) error {
	client, err := s.c.SFTP(ctx)
	if err == nil {
		err = client.PosixRename(s.manifestTemp(), s.layout.Manifest(s.id))
	}
	if err != nil {
		return fmt.Errorf("store manifest %s: %w", s.layout.Manifest(s.id), err)
	}
	return nil
}

// discardManifest removes the staged manifest of a release that failed, as far as the connection allows.
func (s *shipper) discardManifest(ctx context.Context) {
	if client, err := s.c.SFTP(ctx); err == nil {
		_ = client.Remove(s.manifestTemp())
	}
}

// ReadManifest reads and validates the stored manifest of release id. A target without one gives an error
// wrapping ErrNoManifest; a manifest that fails validation is an error naming its bad line.
func ReadManifest(ctx context.Context, c release.Conn, layout release.Layout, id string) (*Manifest, error) {
	if err := layout.Validate(); err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	if !release.ValidReleaseID(id) {
		return nil, fmt.Errorf("read manifest: invalid release id %q", id)
	}
	client, err := c.SFTP(ctx)
	if err != nil {
		return nil, fmt.Errorf("read manifest of %s: %w", id, err)
	}
	name := layout.Manifest(id)
	f, err := client.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("release %s: %w (%s)", id, ErrNoManifest, name)
	}
	if err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", name, err)
	}
	defer f.Close()
	m, err := DecodeManifest(newGrowingReader(remote.ContextReader(ctx, f), maxManifestIO))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return m, nil
}

// shipTempName is the name a file is written under before it is renamed to p: hidden, in the same directory (so
// the rename is atomic), and recognisable. Names too long to take the suffix are replaced by a digest.
func shipTempName(p, token string) string {
	dir, name := path.Split(p)
	suffix := ".skiff-tmp-" + token
	if len(name)+1+len(suffix) > 255 {
		sum := sha256.Sum256([]byte(name))
		name = hex.EncodeToString(sum[:16])
	}
	return dir + "." + name + suffix
}
