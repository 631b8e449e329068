package syncfolder

import (
	"context"
	"fmt"
	"net/http"
	"os"

	"github.com/nexus-suite/nexus/client"
)

// Push encrypts the folder's new and changed files and writes them, and
// deletes the items of files removed since the last sync. Each write is
// based on the version of the last sync, so a file that another device
// changed in the meantime is reported as a conflict and left as it is on
// the server, unless Force is set. The returned error is nil when only
// conflicts occurred; check Result.Conflicts.
func Push(ctx context.Context, cl *client.Client, opts Options) (result Result, err error) {
	if err := opts.defaults(); err != nil {
		return Result{}, err
	}
	st, err := loadState(opts.Dir, opts)
	if err != nil {
		return Result{}, err
	}
	info, err := cl.SyncInfo(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("read sync limits: %w", err)
	}
	keys, err := openKeys(ctx, cl, opts, true)
	if err != nil {
		return Result{}, err
	}
	root, err := os.OpenRoot(opts.Dir)
	if err != nil {
		return Result{}, err
	}
	defer root.Close()

	files, skipped, err := scan(opts.Dir)
	if err != nil {
		return Result{}, err
	}
	result = newResult()
	result.Skipped = append(result.Skipped, skipped...)
	p := pusher{cl: cl, opts: opts, keys: keys, st: st, root: root, result: &result, itemBytes: info.Limits.ItemBytes}

	// Hash every file first, so the progress display has the total. The
	// contents are read again one at a time when they are sent.
	var pending []localFile
	var total int64
	for _, name := range sortedKeys(files) {
		file := files[name]
		if known, ok := st.Files[name]; ok {
			sum, err := hashFile(root, name)
			if err != nil {
				return result, err
			}
			if known.SHA256 == sum {
				result.Unchanged++
				continue
			}
		}
		pending = append(pending, file)
		total += file.size
	}

	opts.Progress.Begin("push", total)
	defer opts.Progress.End()
	// The state is saved even after an error, so the writes that did
	// succeed are not sent again as conflicts.
	defer func() {
		if saveErr := st.save(opts.Dir); saveErr != nil && err == nil {
			err = saveErr
		}
	}()

	for _, file := range pending {
		if err = p.put(ctx, file); err != nil {
			return result, err
		}
		opts.Progress.Advance(file.size)
	}
	for _, name := range sortedKeys(st.Files) {
		if _, present := files[name]; present {
			continue
		}
		if err = p.remove(ctx, name); err != nil {
			return result, err
		}
	}
	return result, nil
}

type pusher struct {
	cl        *client.Client
	opts      Options
	keys      *Keys
	st        *state
	root      *os.Root
	result    *Result
	itemBytes int64
}

// put writes one file based on its last synced version.
func (p *pusher) put(ctx context.Context, file localFile) error {
	name := file.path
	if p.itemBytes > 0 && file.size > p.itemBytes {
		p.result.Skipped = append(p.result.Skipped, Skipped{Path: name,
			Reason: fmt.Sprintf("size %d bytes is over the tier's limit of %d bytes per item", file.size, p.itemBytes)})
		return nil
	}
	content, err := p.root.ReadFile(name)
	if err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	sum := digest(content)

	payload, err := p.keys.Seal(p.opts.Collection, FileHeader{Path: name, Mode: file.mode, Size: int64(len(content))}, content)
	if err != nil {
		return err
	}
	if p.itemBytes > 0 && int64(len(payload)) > p.itemBytes {
		// NOTE: files are not split into chunks, so a file whose payload is
		// larger than the tier's sync_item_bytes cannot be synced.
		p.result.Skipped = append(p.result.Skipped, Skipped{Path: name,
			Reason: fmt.Sprintf("encrypted size %d bytes is over the tier's limit of %d bytes per item", len(payload), p.itemBytes)})
		return nil
	}

	id := p.keys.ItemID(p.opts.Collection, name)
	known, synced := p.st.Files[name]
	pre := client.IfNoneMatch()
	if synced {
		pre = client.IfMatch(known.Version)
	}

	written, err := p.cl.PutSyncItem(ctx, p.opts.Collection, id, payload, pre)
	if synced && isStatus(err, http.StatusNotFound) {
		// The server has no such item, not even a tombstone, such as after
		// the account was deleted and created again: the file is new there.
		written, err = p.cl.PutSyncItem(ctx, p.opts.Collection, id, payload, client.IfNoneMatch())
	}
	if conflict, ok := client.SyncConflictOf(err); ok {
		if p.sameContent(id, conflict.Current, sum) {
			// The server has this content already, from another device.
			p.st.Files[name] = fileState{ID: id, Version: conflict.Current.Version, SHA256: sum}
			p.result.Unchanged++
			return nil
		}
		if !p.opts.Force {
			p.result.Conflicts = append(p.result.Conflicts, conflictOf(name, known.Version, conflict.Current,
				"the server has a newer version: keep yours with push --force, or take the server's with pull --force"))
			return nil
		}
		written, err = p.cl.PutSyncItem(ctx, p.opts.Collection, id, payload, preconditionFor(conflict.Current))
	}
	if err != nil {
		return fmt.Errorf("push %s: %w", name, err)
	}

	p.st.Files[name] = fileState{ID: id, Version: written.Version, SHA256: sum}
	p.result.Written = append(p.result.Written, name)
	p.result.Bytes += int64(len(content))
	return nil
}

// remove deletes the item of a file that is gone from the folder.
func (p *pusher) remove(ctx context.Context, name string) error {
	known := p.st.Files[name]
	_, err := p.cl.DeleteSyncItem(ctx, p.opts.Collection, known.ID, known.Version)
	if conflict, ok := client.SyncConflictOf(err); ok {
		switch {
		case conflict.Current == nil || conflict.Current.Deleted:
			// Deleted on the server already.
			delete(p.st.Files, name)
			p.result.Deleted = append(p.result.Deleted, name)
			return nil
		case !p.opts.Force:
			p.result.Conflicts = append(p.result.Conflicts, conflictOf(name, known.Version, conflict.Current,
				"deleted here but changed on the server: pull to get it back, or push --force to delete it"))
			return nil
		}
		_, err = p.cl.DeleteSyncItem(ctx, p.opts.Collection, known.ID, conflict.Current.Version)
	}
	if isStatus(err, http.StatusNotFound) {
		err = nil
	}
	if err != nil {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	delete(p.st.Files, name)
	p.result.Deleted = append(p.result.Deleted, name)
	return nil
}

// sameContent reports whether the server's current version of item id
// holds content with the digest sum.
func (p *pusher) sameContent(id string, current *client.SyncCurrent, sum string) bool {
	if current == nil || current.Deleted {
		return false
	}
	_, content, err := p.keys.Open(p.opts.Collection, id, current.Payload)
	return err == nil && digest(content) == sum
}

// preconditionFor bases a forced write on the server's current state.
func preconditionFor(current *client.SyncCurrent) client.Precondition {
	if current == nil {
		return client.IfNoneMatch()
	}
	return client.IfMatch(current.Version)
}

func conflictOf(name string, base int64, current *client.SyncCurrent, reason string) Conflict {
	c := Conflict{Path: name, BaseVersion: base, Reason: reason}
	if current != nil {
		c.ServerVersion, c.ServerDeleted = current.Version, current.Deleted
	}
	return c
}
