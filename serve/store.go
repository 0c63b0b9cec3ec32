package serve

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/skiffdeploy/skiff/fleet"
)

// The statuses of a job.
const (
	StatusQueued      = "queued"
	StatusRunning     = "running"
	StatusOK          = "ok"
	StatusFailed      = "failed"
	StatusSuperseded  = "superseded"
	StatusInterrupted = "interrupted"
)

// Job is one deploy asked for by a webhook, as the store keeps it and the API shows it.
type Job struct {
	ID       uint64 `json:"id"`
	App      string `json:"app"`
	Trigger  string `json:"trigger"`
	Delivery string `json:"delivery"`
	// What is the event as its sender names it.
	What string `json:"event"`
	// Tag (image apps), Ref and SHA (git events) are what the event asked for; Revision is what the deploy
	// recorded.
	Tag      string `json:"tag,omitempty"`
	Ref      string `json:"ref,omitempty"`
	SHA      string `json:"sha,omitempty"`
	Revision string `json:"revision,omitempty"`
	Status   string `json:"status"`
	Error    string `json:"error,omitempty"`
	// SupersededBy is the newer job of the app that replaced this one while it waited.
	SupersededBy uint64     `json:"superseded_by,omitempty"`
	Created      time.Time  `json:"created"`
	Started      *time.Time `json:"started,omitempty"`
	Finished     *time.Time `json:"finished,omitempty"`
	// Hosts are the per-host results, the same objects `skiff deploy --json` prints.
	Hosts []*fleet.HostResult `json:"hosts,omitempty"`
}

// Origin is what the targets' history and lock record for the job: the trigger and the delivery.
func (j *Job) Origin() string { return "serve:" + j.Trigger + "/" + j.Delivery }

// Done reports whether the job will not change any more.
func (j *Job) Done() bool { return j.Status != StatusQueued && j.Status != StatusRunning }

// DurationMS is how long the job ran, or has run so far.
func (j *Job) DurationMS() int64 {
	if j.Started == nil {
		return 0
	}
	end := time.Now()
	if j.Finished != nil {
		end = *j.Finished
	}
	return end.Sub(*j.Started).Milliseconds()
}

var (
	bucketJobs       = []byte("jobs")
	bucketLogs       = []byte("logs")
	bucketDeliveries = []byte("deliveries")
	bucketWaiting    = []byte("waiting") // app -> its newest queued job
)

// deliveryTTL is how long a delivery id is remembered for duplicate detection.
const deliveryTTL = 30 * 24 * time.Hour

// keepJobs is how many finished jobs of each app the store keeps, with their logs: older ones are deleted when
// a job finishes and when serve starts, so that the store of a server that runs for months stays small.
const keepJobs = 200

// store keeps jobs, their logs and the delivery ids seen, in one bbolt file.
type store struct{ db *bolt.DB }

// openStore opens (or creates) the job store at file. Another process holding it is an error after a
// short wait, not a hang.
func openStore(file string) (*store, error) {
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return nil, fmt.Errorf("job store: %w", err)
	}
	db, err := bolt.Open(file, 0o600, &bolt.Options{Timeout: 2 * time.Second, NoFreelistSync: true})
	if err != nil {
		return nil, fmt.Errorf("job store %s: %w", file, err)
	}
	// Webhooks that arrive together share one transaction and one fsync (db.Batch), waiting at most this long.
	db.MaxBatchDelay = 2 * time.Millisecond
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketJobs, bucketLogs, bucketDeliveries, bucketWaiting} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("job store %s: %w", file, err)
	}
	return &store{db: db}, nil
}

func (s *store) close() error { return s.db.Close() }

func itob(id uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, id)
	return b
}

func deliveryKey(trigger, delivery string) []byte { return []byte(trigger + "\x00" + delivery) }

func getJob(tx *bolt.Tx, id uint64) (*Job, error) {
	data := tx.Bucket(bucketJobs).Get(itob(id))
	if data == nil {
		return nil, nil
	}
	j := &Job{}
	if err := json.Unmarshal(data, j); err != nil {
		return nil, fmt.Errorf("job %d: %w", id, err)
	}
	return j, nil
}

func putJob(tx *bolt.Tx, j *Job) error {
	data, err := json.Marshal(j)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketJobs).Put(itob(j.ID), data)
}

// seen returns the job a delivery queued (0 when it queued nothing), and whether it was seen at all.
func (s *store) seen(trigger, delivery string) (job uint64, ok bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketDeliveries).Get(deliveryKey(trigger, delivery))
		if v != nil && len(v) >= 16 {
			job, ok = binary.BigEndian.Uint64(v[8:16]), true
		}
		return nil
	})
	return job, ok, err
}

// errDuplicate is returned by add for a delivery seen before.
var errDuplicate = errors.New("duplicate delivery")

// add records the delivery and, unless it was seen before, stores j as a new queued job, the newest of its
// app: the app's job that still waited, if any, is superseded by it. It returns the id of the superseded job
// (0 for none). Concurrent calls share a transaction (db.Batch), so the function may run more than once.
func (s *store) add(j *Job) (superseded uint64, err error) {
	err = s.db.Batch(func(tx *bolt.Tx) error {
		superseded = 0
		deliveries := tx.Bucket(bucketDeliveries)
		key := deliveryKey(j.Trigger, j.Delivery)
		if v := deliveries.Get(key); v != nil {
			if len(v) >= 16 {
				j.ID = binary.BigEndian.Uint64(v[8:16])
			}
			return errDuplicate
		}
		id, err := tx.Bucket(bucketJobs).NextSequence()
		if err != nil {
			return err
		}
		j.ID = id
		v := make([]byte, 16)
		binary.BigEndian.PutUint64(v, uint64(j.Created.Unix()))
		binary.BigEndian.PutUint64(v[8:], id)
		if err := deliveries.Put(key, v); err != nil {
			return err
		}
		waiting := tx.Bucket(bucketWaiting)
		if w := waiting.Get([]byte(j.App)); len(w) == 8 {
			old, err := getJob(tx, binary.BigEndian.Uint64(w))
			if err != nil {
				return err
			}
			if old != nil && old.Status == StatusQueued {
				old.Status, old.SupersededBy, old.Finished = StatusSuperseded, id, &j.Created
				if err := putJob(tx, old); err != nil {
					return err
				}
				superseded = old.ID
			}
		}
		if err := waiting.Put([]byte(j.App), itob(id)); err != nil {
			return err
		}
		return putJob(tx, j)
	})
	return superseded, err
}

// start marks job id running, unless it no longer waits (a newer event superseded it); then it returns nil.
func (s *store) start(id uint64, now time.Time) (*Job, error) {
	var out *Job
	err := s.db.Update(func(tx *bolt.Tx) error {
		j, err := getJob(tx, id)
		if err != nil || j == nil || j.Status != StatusQueued {
			return err
		}
		j.Status, j.Started = StatusRunning, &now
		out = j
		return putJob(tx, j)
	})
	return out, err
}

// update applies f to job id and stores it.
func (s *store) update(id uint64, f func(*Job)) (*Job, error) {
	var out *Job
	err := s.db.Update(func(tx *bolt.Tx) error {
		j, err := getJob(tx, id)
		if err != nil || j == nil {
			return err
		}
		f(j)
		out = j
		return putJob(tx, j)
	})
	return out, err
}

// job returns job id, or nil when there is none.
func (s *store) job(id uint64) (*Job, error) {
	var j *Job
	err := s.db.View(func(tx *bolt.Tx) (err error) {
		j, err = getJob(tx, id)
		return err
	})
	return j, err
}

// jobScan bounds how many of the newest jobs a listing looks through.
const jobScan = 5000

// jobs returns up to limit jobs, newest first, of app ("" for all), among the newest jobScan jobs.
func (s *store) jobs(app string, limit int) ([]*Job, error) {
	var out []*Job
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketJobs).Cursor()
		n := 0
		for k, v := c.Last(); k != nil && len(out) < limit && n < jobScan; k, v = c.Prev() {
			n++
			j := &Job{}
			if err := json.Unmarshal(v, j); err != nil {
				return fmt.Errorf("job %d: %w", binary.BigEndian.Uint64(k), err)
			}
			if app == "" || j.App == app {
				out = append(out, j)
			}
		}
		return nil
	})
	return out, err
}

// recover readies the store after a start: a job left running was cut short (interrupted), and of the jobs
// left queued only each app's newest still waits; the others are superseded by it. It returns the waiting
// job of each app and the interrupted jobs.
func (s *store) recover(now time.Time) (waiting map[string]uint64, interrupted []*Job, err error) {
	waiting = map[string]uint64{}
	err = s.db.Update(func(tx *bolt.Tx) error {
		var changed []*Job
		c := tx.Bucket(bucketJobs).Cursor()
		for k, v := c.Last(); k != nil; k, v = c.Prev() {
			j := &Job{}
			if err := json.Unmarshal(v, j); err != nil {
				return fmt.Errorf("job %d: %w", binary.BigEndian.Uint64(k), err)
			}
			switch j.Status {
			case StatusRunning:
				j.Status, j.Finished = StatusInterrupted, &now
				j.Error = "skiff serve stopped while the job ran"
				interrupted = append(interrupted, j)
				changed = append(changed, j)
			case StatusQueued:
				if newer, ok := waiting[j.App]; ok {
					j.Status, j.SupersededBy, j.Finished = StatusSuperseded, newer, &now
					changed = append(changed, j)
				} else {
					waiting[j.App] = j.ID
				}
			}
		}
		for _, j := range changed {
			if err := putJob(tx, j); err != nil {
				return err
			}
		}
		if _, err := pruneJobs(tx, keepJobs); err != nil {
			return err
		}
		return forgetDeliveries(tx, now)
	})
	return waiting, interrupted, err
}

// prune deletes each app's finished jobs beyond its newest keep, with their logs, and forgets the deliveries
// older than deliveryTTL. It returns how many jobs it deleted.
func (s *store) prune(now time.Time, keep int) (deleted int, err error) {
	err = s.db.Update(func(tx *bolt.Tx) error {
		if deleted, err = pruneJobs(tx, keep); err != nil {
			return err
		}
		return forgetDeliveries(tx, now)
	})
	return deleted, err
}

// pruneJobs deletes each app's finished jobs beyond its newest keep, with their logs. Queued and running jobs
// are never deleted, nor counted.
func pruneJobs(tx *bolt.Tx, keep int) (int, error) {
	jobs, logs := tx.Bucket(bucketJobs), tx.Bucket(bucketLogs)
	kept := map[string]int{}
	var old [][]byte
	c := jobs.Cursor()
	for k, v := c.Last(); k != nil; k, v = c.Prev() {
		j := &Job{}
		if err := json.Unmarshal(v, j); err != nil {
			return 0, fmt.Errorf("job %d: %w", binary.BigEndian.Uint64(k), err)
		}
		if !j.Done() {
			continue
		}
		if kept[j.App] < keep {
			kept[j.App]++
			continue
		}
		old = append(old, append([]byte(nil), k...))
	}
	for _, k := range old {
		if err := jobs.Delete(k); err != nil {
			return 0, err
		}
		if err := logs.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(old), nil
}

// forgetDeliveries drops delivery ids older than deliveryTTL.
func forgetDeliveries(tx *bolt.Tx, now time.Time) error {
	b := tx.Bucket(bucketDeliveries)
	var old [][]byte
	_ = b.ForEach(func(k, v []byte) error {
		if len(v) >= 8 && now.Sub(time.Unix(int64(binary.BigEndian.Uint64(v[:8])), 0)) > deliveryTTL {
			old = append(old, append([]byte(nil), k...))
		}
		return nil
	})
	for _, k := range old {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// putLog stores the log of job id so far.
func (s *store) putLog(id uint64, text []byte) error {
	return s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketLogs).Put(itob(id), text) })
}

// log returns the stored log of job id.
func (s *store) log(id uint64) ([]byte, error) {
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		out = append(out, tx.Bucket(bucketLogs).Get(itob(id))...)
		return nil
	})
	return out, err
}
