package catalog

import (
	"maps"
	"slices"
	"strconv"
	"strings"
)

// check applies the rules across entries: unique names and environments,
// mappings naming declared destinations, and no two writers of the same
// Redis keys unless declared.
func (d *decoder) check(f *file) {
	names := map[string]*destEntry{}
	envs := map[string]*destEntry{}
	nameLines := map[string]int{}
	for _, de := range f.dests {
		if d.unique(nameLines, de.Name, de.entry, de.lines) {
			names[de.Name] = de
		}
		if de.Environment != "" && de.Name != "" {
			if first, ok := envs[de.Environment]; ok && first.Name != de.Name {
				line, ok := de.lines["environment"]
				if !ok {
					line = de.line
				}
				d.add(line, de.entry, "environment", "%s", invalid(de.Environment, "an environment no other destination serves (destination %q does)", first.Name))
			} else if !ok {
				envs[de.Environment] = de
			}
		}
	}
	d.sharedStorage(f.dests)

	projectLines := map[string]int{}
	for _, pe := range f.projects {
		d.unique(projectLines, pe.Name, pe.entry, pe.lines)
	}
	mapNames := map[string]int{}
	pushTargets := map[string]*mapEntry{} // "<integration>/<cohort> <destination>"
	for _, me := range f.maps {
		d.unique(mapNames, me.Name, me.entry, me.lines)
		if in, co, ok := me.PushTarget(); ok {
			for i, dn := range me.Destinations {
				key := in + "/" + co + " " + dn
				if first, dup := pushTargets[key]; dup && first != me {
					d.add(me.destLines[i], me.entry, "destinations", "%s", invalid(dn, "a destination where no other mapping receives the pushes of integration %q cohort %q (%s at line %d does)",
						in, co, first.entry, first.line))
					continue
				}
				pushTargets[key] = me
			}
		}
		if p := me.Source.Project; p != "" && me.projectLine > 0 {
			if _, ok := projectLines[p]; !ok {
				d.add(me.projectLine, me.entry, "source.amplitude_project", "%s", invalid(p, "a declared amplitude project (%s)", declaredNames(projectLines)))
			}
		}
		seen := map[string]bool{}
		for i, dn := range me.Destinations {
			switch {
			case seen[dn]:
				d.add(me.destLines[i], me.entry, "destinations", "%s", invalid(dn, "each destination once"))
			case names[dn] == nil:
				d.add(me.destLines[i], me.entry, "destinations", "%s", invalid(dn, "a declared destination (%s)", declared(names)))
			}
			seen[dn] = true
		}
	}
	d.sharedSegments(f.maps, names)
}

// unique reports an entry whose name an earlier entry of its kind has,
// and tells whether name is the first of its kind (and valid).
func (d *decoder) unique(first map[string]int, name string, e Entry, lines map[string]int) bool {
	if name == "" {
		return false
	}
	if l, ok := first[name]; ok {
		d.add(lines["name"], e, "name", "%s", invalid(name, "a name no other %s has (also at line %d)", e.Kind, l))
		return false
	}
	first[name] = lines["name"]
	return true
}

func declared(names map[string]*destEntry) string { return declaredNames(names) }

func declaredNames[V any](names map[string]V) string {
	if len(names) == 0 {
		return "none declared"
	}
	return strings.Join(slices.Sorted(maps.Keys(names)), ", ")
}

// sharedStorage refuses two destinations writing under one prefix of one
// Redis server unless both declare fan_in: their environments would read
// and remove each other's members.
func (d *decoder) sharedStorage(dests []*destEntry) {
	owner := map[string]*destEntry{}
	for _, de := range dests {
		for _, s := range de.storage {
			key := s + " " + de.Prefix()
			first, ok := owner[key]
			if !ok {
				owner[key] = de
				continue
			}
			if first.FanIn && de.FanIn || first == de {
				continue
			}
			line := de.line
			for _, f := range [...]string{"client_side_id", "prefix", "redis"} {
				if l, ok := de.lines[f]; ok {
					line = l
					break
				}
			}
			d.add(line, de.entry, "", "writes under prefix %q of Redis %s like %s (line %d): want a prefix of its own, or fan_in: true on both to share it deliberately",
				de.Prefix(), s, first.entry, first.line)
			break
		}
	}
}

// sharedSegments refuses two mappings writing one segment (key and
// generation) into the same keys: each run would remove the other's
// members.
func (d *decoder) sharedSegments(maps []*mapEntry, dests map[string]*destEntry) {
	owner := map[string]*mapEntry{}
	for _, me := range maps {
		if me.Segment == "" {
			continue
		}
	next:
		for i, dn := range me.Destinations {
			de := dests[dn]
			if de == nil {
				continue
			}
			for _, s := range de.storage {
				key := s + " " + de.Prefix() + " " + me.Segment + " " + strconv.Itoa(me.Generation)
				first, ok := owner[key]
				if !ok {
					owner[key] = me
					continue
				}
				if first == me {
					continue
				}
				d.add(me.destLines[i], me.entry, "destinations", "%s", invalid(dn, "a destination where no other mapping writes segment %q generation %d (%s at line %d does)",
					me.Segment, me.Generation, first.entry, first.line))
				break next
			}
		}
	}
}

// catalog is the normalised catalog of a file without problems.
func (f *file) catalog() *Catalog {
	c := &Catalog{Destinations: []Destination{}, Mappings: []Mapping{}, AmplitudeProjects: []AmplitudeProject{}}
	for _, de := range f.dests {
		c.Destinations = append(c.Destinations, de.Destination)
	}
	for _, me := range f.maps {
		m := me.Mapping
		m.Destinations = slices.Sorted(slices.Values(m.Destinations))
		c.Mappings = append(c.Mappings, m)
	}
	for _, pe := range f.projects {
		c.AmplitudeProjects = append(c.AmplitudeProjects, pe.AmplitudeProject)
	}
	slices.SortFunc(c.AmplitudeProjects, func(a, b AmplitudeProject) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(c.Destinations, func(a, b Destination) int { return strings.Compare(a.Name, b.Name) })
	slices.SortFunc(c.Mappings, func(a, b Mapping) int { return strings.Compare(a.Name, b.Name) })
	return c
}
