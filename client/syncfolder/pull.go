package syncfolder

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"

	"github.com/nexus-suite/nexus/client"
)

// Pull reads the collection's changes since the last pull, decrypts them
// and applies them to the folder: new and changed files are written
// through a temporary file and a rename, and files deleted on the server
// are removed. Every write goes through an os.Root of the folder, so a
// path can never reach outside it, not even through a symbolic link. A
// file changed locally since the last sync is left as it is and reported
// as a conflict, unless Force is set; Force also reads the whole feed
// again, so conflicts of earlier pulls are resolved too.
func Pull(ctx context.Context, cl *client.Client, opts Options) (result Result, err error) {
	if err := opts.defaults(); err != nil {
		return Result{}, err
	}
	st, err := loadState(opts.Dir, opts)
	if err != nil {
		return Result{}, err
	}
	keys, err := openKeys(ctx, cl, opts, false)
	if err != nil {
		return Result{}, err
	}
	root, err := os.OpenRoot(opts.Dir)
	if err != nil {
		return Result{}, err
	}
	defer root.Close()

	total := int64(0)
	if st.Cursor == "" || opts.Force {
		total = collectionBytes(ctx, cl, opts.Collection)
	}
	opts.Progress.Begin("pull", total)
	defer opts.Progress.End()
	defer func() {
		if saveErr := st.save(opts.Dir); saveErr != nil && err == nil {
			err = saveErr
		}
	}()

	result = newResult()
	p := puller{opts: opts, keys: keys, st: st, root: root, result: &result, paths: map[string]string{}}
	for name, f := range st.Files {
		p.paths[f.ID] = name
	}
	since := st.Cursor
	if opts.Force {
		since = ""
	}
	cursor, err := cl.EachSyncChange(ctx, opts.Collection, since, 0, p.apply)
	if client.IsResyncRequired(err) {
		// Tombstones after the cursor were purged: read the whole feed.
		// Versions in the state skip the files that are up to date.
		cursor, err = cl.EachSyncChange(ctx, opts.Collection, "", 0, p.apply)
	}
	if err != nil {
		return result, fmt.Errorf("pull: %w", err)
	}
	st.Cursor = cursor
	return result, nil
}

// collectionBytes returns the collection's stored bytes for the progress
// display, or 0 when the info cannot be read.
func collectionBytes(ctx context.Context, cl *client.Client, collection string) int64 {
	info, err := cl.SyncInfo(ctx)
	if err != nil {
		return 0
	}
	for _, c := range info.Collections {
		if c.Name == collection {
			return c.Bytes
		}
	}
	return 0
}

type puller struct {
	opts   Options
	keys   *Keys
	st     *state
	root   *os.Root
	result *Result
	// paths maps item ids to the paths of the state.
	paths map[string]string
}

// apply applies one change of the feed.
func (p *puller) apply(change client.SyncChange) error {
	defer p.opts.Progress.Advance(int64(len(change.Payload)))
	if change.Deleted {
		return p.applyTombstone(change)
	}

	header, content, err := p.keys.Open(p.opts.Collection, change.ID, change.Payload)
	if err != nil {
		// An item that another program stored in the collection, or one
		// whose path would leave the folder, is reported and left alone.
		p.result.Skipped = append(p.result.Skipped, Skipped{Path: "item " + change.ID, Reason: err.Error()})
		return nil
	}
	name := header.Path
	known, synced := p.st.Files[name]
	if synced && known.Version >= change.Version {
		p.result.Unchanged++
		return nil
	}

	sum := digest(content)
	local, err := p.localDigest(name)
	if err != nil {
		return err
	}
	switch {
	case local == sum:
		// The folder has this content already.
		p.result.Unchanged++
		p.record(name, change.ID, change.Version, sum)
		return nil
	case local == "" && synced && !p.opts.Force:
		p.result.Conflicts = append(p.result.Conflicts, Conflict{Path: name, BaseVersion: known.Version,
			ServerVersion: change.Version, Reason: "deleted here but changed on the server: pull --force to get it back, or push --force to delete it"})
		return nil
	case local != "" && local != known.SHA256 && !p.opts.Force:
		p.result.Conflicts = append(p.result.Conflicts, Conflict{Path: name, BaseVersion: known.Version,
			ServerVersion: change.Version, Reason: "changed here and on the server: push --force to keep yours, or pull --force to take the server's"})
		return nil
	}

	if err := p.write(name, header.Mode, content); err != nil {
		return err
	}
	p.record(name, change.ID, change.Version, sum)
	p.result.Written = append(p.result.Written, name)
	p.result.Bytes += int64(len(content))
	return nil
}

// applyTombstone removes the file of a deleted item unless it changed
// locally since the last sync.
func (p *puller) applyTombstone(change client.SyncChange) error {
	name, known := p.paths[change.ID]
	if !known {
		return nil
	}
	synced := p.st.Files[name]
	local, err := p.localDigest(name)
	if err != nil {
		return err
	}
	if local != "" && local != synced.SHA256 && !p.opts.Force {
		p.result.Conflicts = append(p.result.Conflicts, Conflict{Path: name, BaseVersion: synced.Version,
			ServerVersion: change.Version, ServerDeleted: true,
			Reason: "changed here but deleted on the server: push --force to keep it, or pull --force to delete it"})
		return nil
	}
	if local != "" {
		if err := p.root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", name, err)
		}
		p.result.Deleted = append(p.result.Deleted, name)
	}
	delete(p.st.Files, name)
	delete(p.paths, change.ID)
	return nil
}

func (p *puller) record(name, id string, version int64, sum string) {
	p.st.Files[name] = fileState{ID: id, Version: version, SHA256: sum}
	p.paths[id] = name
}

// localDigest returns the digest of the folder's file at name, or "" when
// there is none. A directory or link in its place is an error.
func (p *puller) localDigest(name string) (string, error) {
	info, err := p.root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("check %s: %w", name, err)
	}
	if !info.Mode().IsRegular() {
		return "", fmt.Errorf("cannot write %s: a directory or link is in its place", name)
	}
	return hashFile(p.root, name)
}

// write replaces the file at name through a temporary file in the same
// directory and a rename, so a reader never sees half a file.
func (p *puller) write(name string, mode uint32, content []byte) error {
	perm := os.FileMode(0o644)
	if mode&0o111 != 0 {
		perm = 0o755
	}
	if dir := path.Dir(name); dir != "." {
		if err := p.root.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create the folder of %s: %w", name, err)
		}
	}

	temporary := path.Join(path.Dir(name), temporaryPrefix+randomSuffix())
	file, err := p.root.OpenFile(temporary, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	defer p.root.Remove(temporary)
	if _, err := file.Write(content); err != nil {
		file.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := file.Sync(); err != nil {
		file.Close()
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := file.Close(); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}

	// The mode is set again because OpenFile applies the umask.
	if err := p.root.Chmod(temporary, perm); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	if err := p.root.Rename(temporary, name); err != nil {
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}
