package skills

import (
	"errors"
	"fmt"
)

// Bounds of the archive limits in modules.skills. The upper bounds keep one
// publish, which holds the upload, its unpacked files and the canonical
// archive in memory at once, within a few hundred MiB.
const (
	minArchiveBytes   = 1 << 10
	maxArchiveBytes   = 100 << 20
	maxUnpackedBytes  = 256 << 20
	maxFilesCeiling   = 10_000
	minPathBytes      = 64
	maxPathBytesLimit = 4096
	maxPageSizeLimit  = 1_000
)

// options is the module's config section, modules.skills. The defaults here
// match configs/nexus.yaml, which documents each key.
type options struct {
	// MaxArchiveBytes is the largest upload, compressed. It is also the body
	// limit of the publish route.
	MaxArchiveBytes int `koanf:"max_archive_bytes"`
	// MaxUnpackedBytes is the largest sum of the file sizes inside an archive,
	// counted while reading, never taken from headers.
	MaxUnpackedBytes int64 `koanf:"max_unpacked_bytes"`
	// MaxFiles is the largest number of entries, files and directories, in an archive.
	MaxFiles int `koanf:"max_files"`
	// MaxPathBytes is the longest path of an entry, in bytes.
	MaxPathBytes int `koanf:"max_path_bytes"`
	// DefaultPageSize is the page size of list routes without a limit parameter.
	DefaultPageSize int `koanf:"default_page_size"`
	// MaxPageSize is the largest limit parameter that list routes accept.
	MaxPageSize int `koanf:"max_page_size"`
	// MaxConcurrentPublishes bounds the publishes unpacked at once, since
	// each holds its upload, its files and the canonical archive in memory.
	MaxConcurrentPublishes int `koanf:"max_concurrent_publishes"`
}

func defaultOptions() options {
	return options{
		MaxArchiveBytes:  10 << 20,
		MaxUnpackedBytes: 30 << 20,
		MaxFiles:         500,
		MaxPathBytes:     512,
		DefaultPageSize:  20,
		MaxPageSize:      100,

		MaxConcurrentPublishes: 4,
	}
}

// limits returns the archive limits that the options set.
func (o options) limits() archiveLimits {
	return archiveLimits{
		UnpackedBytes: o.MaxUnpackedBytes,
		Files:         o.MaxFiles,
		PathBytes:     o.MaxPathBytes,
	}
}

// validate checks ranges; each error names its key under modules.skills.
func (o options) validate() error {
	var problems []error
	check := func(ok bool, key, message string) {
		if !ok {
			problems = append(problems, fmt.Errorf("modules.skills.%s: %s", key, message))
		}
	}

	check(o.MaxArchiveBytes >= minArchiveBytes && o.MaxArchiveBytes <= maxArchiveBytes,
		"max_archive_bytes", fmt.Sprintf("must be between %d and %d", minArchiveBytes, maxArchiveBytes))
	check(o.MaxUnpackedBytes >= int64(minArchiveBytes) && o.MaxUnpackedBytes <= maxUnpackedBytes,
		"max_unpacked_bytes", fmt.Sprintf("must be between %d and %d", minArchiveBytes, maxUnpackedBytes))
	check(o.MaxFiles >= 1 && o.MaxFiles <= maxFilesCeiling,
		"max_files", fmt.Sprintf("must be between 1 and %d", maxFilesCeiling))
	check(o.MaxPathBytes >= minPathBytes && o.MaxPathBytes <= maxPathBytesLimit,
		"max_path_bytes", fmt.Sprintf("must be between %d and %d", minPathBytes, maxPathBytesLimit))
	check(o.MaxPageSize >= 1 && o.MaxPageSize <= maxPageSizeLimit,
		"max_page_size", fmt.Sprintf("must be between 1 and %d", maxPageSizeLimit))
	check(o.DefaultPageSize >= 1 && o.DefaultPageSize <= o.MaxPageSize,
		"default_page_size", "must be between 1 and max_page_size")
	check(o.MaxConcurrentPublishes >= 1 && o.MaxConcurrentPublishes <= 64,
		"max_concurrent_publishes", "must be between 1 and 64")
	return errors.Join(problems...)
}
