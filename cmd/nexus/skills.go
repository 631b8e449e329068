package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/nexus-suite/nexus/client"
	"github.com/nexus-suite/nexus/client/skillpack"
)

// skillsDirEnv names the folder that installed skills are unpacked into.
const skillsDirEnv = "NEXUS_SKILLS_DIR"

func skillsCommand() *cobra.Command {
	command := &cobra.Command{Use: "skills", Short: "Search, install and publish skills on the Skills Hub (Pro and Studio)"}
	command.AddCommand(skillsSearchCommand(), skillsInfoCommand(), skillsInstallCommand(), skillsInstalledCommand(),
		skillsUninstallCommand(), skillsPublishCommand())
	return command
}

func skillsSearchCommand() *cobra.Command {
	command := &cobra.Command{
		Use:   "search [QUERY]",
		Short: "Search skills by name, description and SKILL.md text",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openSession(cmd, true)
			if err != nil {
				return err
			}
			search := client.SkillSearch{}
			if len(args) == 1 {
				search.Query = args[0]
			}
			search.Sort, _ = cmd.Flags().GetString("sort")
			search.Limit, _ = cmd.Flags().GetInt("limit")
			search.Cursor, _ = cmd.Flags().GetString("cursor")
			page, err := s.client.SearchSkills(commandContext(cmd), search)
			if err != nil {
				return err
			}
			return s.print(page, func(w io.Writer) error {
				if len(page.Items) == 0 {
					_, err := fmt.Fprintln(w, "No skills match.")
					return err
				}
				table := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(table, "NAME\tVERSION\tINSTALLS\tDESCRIPTION")
				for _, skill := range page.Items {
					description := firstLine(skill.Description, 80)
					if skill.Deprecated {
						description = "(deprecated) " + description
					}
					fmt.Fprintf(table, "%s\t%s\t%d\t%s\n", skill.Name, skill.Version, skill.InstallCount, description)
				}
				if err := table.Flush(); err != nil {
					return err
				}
				if page.NextCursor != nil {
					_, err := fmt.Fprintf(w, "more: --cursor %s\n", *page.NextCursor)
					return err
				}
				return nil
			})
		},
	}
	command.Flags().String("sort", "relevance", "the order: relevance, installs or updated")
	command.Flags().Int("limit", 0, "hits per page (default: the server's)")
	command.Flags().String("cursor", "", "the cursor of the next page, as the previous page printed it")
	return userFlags(command)
}

// firstLine returns the first line of text, cut to at most width runes.
func firstLine(text string, width int) string {
	line, _, _ := strings.Cut(text, "\n")
	if runes := []rune(line); len(runes) > width {
		return string(runes[:width-1]) + "…"
	}
	return line
}

func skillsInfoCommand() *cobra.Command {
	return userFlags(&cobra.Command{
		Use:   "info NAME",
		Short: "Show a skill with its owners and versions",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := openSession(cmd, true)
			if err != nil {
				return err
			}
			ctx := commandContext(cmd)
			skill, err := s.client.Skill(ctx, args[0])
			if err != nil {
				return err
			}
			versions, err := s.client.SkillVersions(ctx, args[0])
			if err != nil {
				return err
			}
			info := struct {
				client.Skill
				Versions []client.SkillVersion `json:"versions"`
			}{skill, versions}
			return s.print(info, func(w io.Writer) error {
				table := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintf(table, "name\t%s\n", skill.Name)
				fmt.Fprintf(table, "description\t%s\n", firstLine(skill.Description, 100))
				if skill.LatestVersion != nil {
					fmt.Fprintf(table, "latest\t%s\n", *skill.LatestVersion)
				}
				if skill.License != "" {
					fmt.Fprintf(table, "license\t%s\n", skill.License)
				}
				if skill.Deprecated {
					fmt.Fprintf(table, "deprecated\t%s\n", skill.DeprecationMessage)
				}
				fmt.Fprintf(table, "installs\t%d\n", skill.InstallCount)
				fmt.Fprintf(table, "owners\t%s\n", strings.Join(skill.Owners, ", "))
				for _, v := range versions {
					state := ""
					switch {
					case v.Yanked:
						state = " (yanked)"
					case v.Latest:
						state = " (latest)"
					}
					fmt.Fprintf(table, "version\t%s%s, %s, %s\n", v.Version, state, formatBytes(v.Size), v.PublishedAt.Local().Format(time.DateOnly))
				}
				return table.Flush()
			})
		},
	})
}

// skillsDir returns the folder that holds installed skills: --dir,
// $NEXUS_SKILLS_DIR, or skills in the nexus config directory.
func skillsDir(cmd *cobra.Command) (string, error) {
	if dir, _ := cmd.Flags().GetString("dir"); dir != "" {
		return dir, nil
	}
	if dir := os.Getenv(skillsDirEnv); dir != "" {
		return dir, nil
	}
	config, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the config directory for skills: %w (use --dir)", err)
	}
	return filepath.Join(config, "nexus", "skills"), nil
}

func skillsInstallCommand() *cobra.Command {
	command := &cobra.Command{
		Use:   "install NAME[@VERSION]",
		Short: "Install a skill and unpack it into your skills folder",
		Long: `Record the installation on the server, pinned to VERSION or following the latest version, then
download the archive, check its digest and unpack it into DIR/NAME, replacing an older copy. DIR is
--dir, $` + skillsDirEnv + `, or skills in the nexus config directory (such as ~/.config/nexus/skills).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, version, _ := strings.Cut(args[0], "@")
			dir, err := skillsDir(cmd)
			if err != nil {
				return err
			}
			s, err := openSession(cmd, true)
			if err != nil {
				return err
			}
			ctx := commandContext(cmd)
			installation, _, err := s.client.InstallSkill(ctx, name, version)
			if err != nil {
				return err
			}
			if installation.Version == nil {
				return fmt.Errorf("%s has no version to download: every version is yanked or a pre-release; name one with %s@VERSION", name, name)
			}
			archive, err := s.client.DownloadSkill(ctx, name, *installation.Version)
			if err != nil {
				return err
			}
			target := filepath.Join(dir, name)
			if err := skillpack.Unpack(archive.Data, target); err != nil {
				return fmt.Errorf("unpack %s: %w", name, err)
			}

			result := struct {
				client.SkillInstallation
				Path   string `json:"path"`
				Digest string `json:"digest"`
			}{installation, target, archive.Digest}
			return s.print(result, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Installed %s %s into %s.\n", name, *installation.Version, target)
				return err
			})
		},
	}
	command.Flags().String("dir", "", "the folder that holds installed skills")
	return userFlags(command)
}

func skillsInstalledCommand() *cobra.Command {
	return userFlags(&cobra.Command{
		Use:   "installed",
		Short: "List the skills you installed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := openSession(cmd, true)
			if err != nil {
				return err
			}
			var all []client.SkillInstallation
			cursor := ""
			for {
				page, err := s.client.InstalledSkills(commandContext(cmd), cursor, 0)
				if err != nil {
					return err
				}
				all = append(all, page.Items...)
				if page.NextCursor == nil {
					break
				}
				cursor = *page.NextCursor
			}
			return s.print(all, func(w io.Writer) error {
				table := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(table, "NAME\tVERSION\tPINNED\tLATEST")
				for _, i := range all {
					fmt.Fprintf(table, "%s\t%s\t%s\t%s\n", i.Name, orDash(i.Version), orDash(i.PinnedVersion), orDash(i.LatestVersion))
				}
				return table.Flush()
			})
		},
	})
}

func orDash(value *string) string {
	if value == nil || *value == "" {
		return "-"
	}
	return *value
}

func skillsUninstallCommand() *cobra.Command {
	command := &cobra.Command{
		Use:   "uninstall NAME",
		Short: "Remove your installation of a skill and its unpacked folder",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := skillsDir(cmd)
			if err != nil {
				return err
			}
			s, err := openSession(cmd, true)
			if err != nil {
				return err
			}
			if err := s.client.UninstallSkill(commandContext(cmd), args[0]); err != nil {
				return err
			}
			target := filepath.Join(dir, args[0])
			if err := os.RemoveAll(target); err != nil {
				return fmt.Errorf("remove %s: %w", target, err)
			}
			return s.print(map[string]any{"name": args[0], "uninstalled": true}, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "Uninstalled %s.\n", args[0])
				return err
			})
		},
	}
	command.Flags().String("dir", "", "the folder that holds installed skills")
	return userFlags(command)
}

func skillsPublishCommand() *cobra.Command {
	command := &cobra.Command{
		Use:   "publish DIR|ARCHIVE",
		Short: "Publish a skill version from a folder, a .zip or a .tar.gz",
		Long: `Publish a skill version. A folder is packed into a tar.gz with its SKILL.md at the root, without
version-control folders, links or special files. The version comes from --version or the version in
the SKILL.md front matter. Publishing the same content again is harmless; other content under a
published version is a conflict, because versions are immutable.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			archive, contentType, skipped, err := readSkillArchive(args[0])
			if err != nil {
				return err
			}
			s, err := openSession(cmd, true)
			if err != nil {
				return err
			}
			for _, entry := range skipped {
				fmt.Fprintf(cmd.ErrOrStderr(), "skipped %s: %s\n", entry.Path, entry.Reason)
			}

			version, _ := cmd.Flags().GetString("version")
			var progress func(sent, total int64)
			if bar := newProgress(cmd); bar != nil {
				bar.Begin("publish", int64(len(archive)))
				defer bar.End()
				progress = bar.Upload
			}
			published, created, err := s.client.PublishSkill(commandContext(cmd), archive, contentType, version, progress)
			if err != nil {
				return err
			}
			return s.print(published, func(w io.Writer) error {
				verb := "Published"
				if !created {
					verb = "Already published:"
				}
				_, err := fmt.Fprintf(w, "%s %s %s (%s, %d files, %s)\n", verb, published.Name, published.Version,
					formatBytes(published.Size), published.Files, published.Digest)
				return err
			})
		},
	}
	command.Flags().String("version", "", "the version to publish, when SKILL.md has none or to confirm it")
	return userFlags(command)
}

// readSkillArchive packs a folder, or reads a .zip or .tar.gz file, and
// returns the bytes with their content type.
func readSkillArchive(source string) ([]byte, string, []skillpack.Skipped, error) {
	info, err := os.Stat(source)
	if err != nil {
		return nil, "", nil, err
	}
	if info.IsDir() {
		archive, skipped, err := skillpack.Pack(source)
		return archive, client.SkillArchiveTarGz, skipped, err
	}

	lower := strings.ToLower(source)
	contentType := ""
	switch {
	case strings.HasSuffix(lower, ".zip"):
		contentType = client.SkillArchiveZip
	case strings.HasSuffix(lower, ".tar.gz"), strings.HasSuffix(lower, ".tgz"):
		contentType = client.SkillArchiveTarGz
	default:
		return nil, "", nil, errors.New("publish takes a folder, a .zip or a .tar.gz (or .tgz) file")
	}
	archive, err := os.ReadFile(source)
	return archive, contentType, nil, err
}
