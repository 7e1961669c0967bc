package memcachestore

import (
	"crypto/md5"
	"encoding/binary"
	"slices"
	"strconv"
)

// pointsPerNode is libketama's 160 points per node (40 MD5 digests of four
// points each), which spreads keys within a few percent of even.
const pointsPerNode = 160

// ring maps keys to nodes by consistent hashing, libketama's way: node n has
// the points read little-endian from each 4-byte quarter of
// MD5("<addr>-<i>") for i in 0..39; a key belongs to the node of the first
// point at or after the little-endian first quarter of MD5(key), wrapping
// around. libmemcached's ketama mode, given the same "host:port" names,
// finds the same nodes.
type ring struct {
	points []uint32
	nodes  []int // nodes[i] owns points[i]
}

func newRing(addrs []string) ring {
	type point struct {
		at   uint32
		node int
	}
	var ps []point
	for n, addr := range addrs {
		for i := 0; i < pointsPerNode/4; i++ {
			sum := md5.Sum([]byte(addr + "-" + strconv.Itoa(i)))
			for q := 0; q < 4; q++ {
				ps = append(ps, point{binary.LittleEndian.Uint32(sum[q*4:]), n})
			}
		}
	}
	slices.SortStableFunc(ps, func(a, b point) int {
		switch {
		case a.at < b.at:
			return -1
		case a.at > b.at:
			return 1
		}
		return a.node - b.node
	})
	r := ring{points: make([]uint32, len(ps)), nodes: make([]int, len(ps))}
	for i, p := range ps {
		r.points[i], r.nodes[i] = p.at, p.node
	}
	return r
}

// node returns the index of the node that holds key.
func (r ring) node(key string) int {
	if len(r.points) <= pointsPerNode {
		return 0
	}
	sum := md5.Sum([]byte(key))
	h := binary.LittleEndian.Uint32(sum[:])
	i, _ := slices.BinarySearch(r.points, h)
	if i == len(r.points) {
		i = 0
	}
	return r.nodes[i]
}
