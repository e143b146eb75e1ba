/*
 * Optional compiled helpers (see analyzer/speedups.py): the inner loops of the pcap and
 * pcapng walkers, and a named-tuple constructor for the protocol core's events.
 *
 * The walker loops take the frames that make up nearly all of a netdump capture: Ethernet
 * (untagged or VLAN-tagged), raw IPv4, Linux cooked (SLL, SLL2) or BSD loopback frames
 * carrying IPv4 without options carrying whole UDP datagrams, and turn
 * them into the same Datagram tuples, with the same checksum verdicts, as the Python walkers
 * in pcap.py and pcapng.py. At the first record they would handle differently (another
 * link type, fragments, IP options, ICMP, a cut or corrupt record, any block but an
 * enhanced packet block) they stop *before* it and return, and the Python walker takes
 * that record with all its checks and notices. So these loops never decide anything the
 * Python code does not decide the same way; tests compare the two on every sample and on
 * mutated captures.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <limits.h>
#include <stdint.h>
#include <string.h>

#define MAX_CAPLEN (256 * 1024)
#define MAX_BLOCK (16 * 1024 * 1024)
#define EPB_TYPE 6
#define MAX_TAGS 4
#define KEY_MAX (6 + 2 * MAX_TAGS + 1)

enum { DONE = 0, PYTHON = 1, FAIL = -1 };

static inline uint32_t be16(const unsigned char *p) { return (uint32_t)p[0] << 8 | p[1]; }

static inline uint32_t rd32(const unsigned char *p, int big)
{
    if (big)
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* Sum of big-endian 16-bit words (a last odd byte padded with zero), modulo 0xFFFF.
 * Eight bytes are added at a time in the machine's byte order: a sum of 16-bit words is the
 * same in either order but byte-swapped, and swapping is multiplying by 256 modulo 0xFFFF. */
static uint32_t sum16(const unsigned char *p, Py_ssize_t len)
{
    uint64_t s = 0;
    Py_ssize_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        s += (v & 0xFFFFFFFFu) + (v >> 32);  /* 2**32 is 1 modulo 0xFFFF */
    }
    for (; i + 2 <= len; i += 2) {
        uint16_t v;
        memcpy(&v, p + i, 2);
        s += v;
    }
    if (i < len) {
        uint16_t v = 0;
        memcpy(&v, p + i, 1);  /* the padded word in memory order: byte, then zero */
        s += v;
    }
    s %= 0xFFFF;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    return (uint32_t)s;
#else
    return (uint32_t)(s * 256 % 0xFFFF);
#endif
}

/* The verdict of the Python walkers' checksum code for the IPv4 header at ip (20 bytes,
 * no options) and the whole UDP datagram after it (ulen bytes): 1 when wrong. A zero UDP
 * checksum means the sender computed none; a failing one that equals the pseudo-header sum
 * or its complement is a sender with checksum offload, not corruption. */
static int checksum_bad(const unsigned char *ip, uint32_t ulen, uint32_t ucsum)
{
    uint32_t h = sum16(ip, 20);
    int hdr_field_zero = ip[10] == 0 && ip[11] == 0;
    if (!ucsum)
        return h != 0 && !hdr_field_zero;
    if (h != 0 && !hdr_field_zero)
        return 1;
    uint32_t addrs = sum16(ip + 12, 8);
    uint64_t s = (uint64_t)addrs + sum16(ip + 20, ulen) + 17 + ulen;
    if (s % 0xFFFF == 0)
        return 0;
    uint32_t ps = (uint32_t)(((uint64_t)addrs + 17 + ulen) % 0xFFFF);
    uint32_t f = ucsum % 0xFFFF;
    return !(f == ps || f == (0xFFFF - ps) % 0xFFFF);
}

/* The last few addresses and ports seen, as objects: a capture holds a handful of hosts, so
 * most datagrams share their address and port objects instead of making new ones. */
#define NCACHE 4
typedef struct {
    uint32_t key[NCACHE];
    PyObject *obj[NCACHE];
    int next;
} Cache;

static void cache_clear(Cache *c)
{
    for (int i = 0; i < NCACHE; i++)
        Py_CLEAR(c->obj[i]);
}

static PyObject *cache_get(Cache *c, uint32_t key, PyObject *(*make)(const unsigned char *, uint32_t),
                           const unsigned char *p)
{
    for (int i = 0; i < NCACHE; i++) {
        if (c->obj[i] && c->key[i] == key) {
            Py_INCREF(c->obj[i]);
            return c->obj[i];
        }
    }
    PyObject *o = make(p, key);
    if (!o)
        return NULL;
    int i = c->next;
    c->next = (i + 1) % NCACHE;
    Py_XSETREF(c->obj[i], o);
    c->key[i] = key;
    Py_INCREF(o);
    return o;
}

static PyObject *make_addr(const unsigned char *p, uint32_t key)
{
    (void)key;
    return PyBytes_FromStringAndSize((const char *)p, 4);
}

static PyObject *make_port(const unsigned char *p, uint32_t key)
{
    (void)p;
    return PyLong_FromUnsignedLong(key);
}

typedef struct {
    PyTypeObject *dgram;
    PyObject *out;           /* list the items are appended to */
    const unsigned char *ports; /* bitmap of the 65536 ports */
    int verify;
    PyObject *links;         /* [key_a, link_a, key_b, link_b]: the last two link identities */
    PyObject *zero;
    Cache addrs, ports_seen;
} Walk;

static inline int port_wanted(const Walk *w, uint32_t port)
{
    return w->ports[port >> 3] >> (port & 7) & 1;
}

/* The link identity tuple (source MAC, VLAN ids) of a frame, one object per host as the
 * Python walkers do (the protocol core compares identities first). New reference. */
static PyObject *link_of(Walk *w, const unsigned char *key, Py_ssize_t klen,
                         const unsigned char *addr, Py_ssize_t alen, const uint32_t *vids,
                         int ntags)
{
    for (int k = 0; k < 4; k += 2) {
        PyObject *kb = PyList_GET_ITEM(w->links, k);
        if (PyBytes_Check(kb) && PyBytes_GET_SIZE(kb) == klen
                && memcmp(PyBytes_AS_STRING(kb), key, klen) == 0) {
            PyObject *link = PyList_GET_ITEM(w->links, k + 1);
            Py_INCREF(link);
            return link;
        }
    }
    PyObject *tags = PyTuple_New(ntags);
    if (!tags)
        return NULL;
    for (int i = 0; i < ntags; i++) {
        PyObject *v = PyLong_FromUnsignedLong(vids[i]);
        if (!v) {
            Py_DECREF(tags);
            return NULL;
        }
        PyTuple_SET_ITEM(tags, i, v);
    }
    PyObject *macb = PyBytes_FromStringAndSize((const char *)addr, alen);
    PyObject *link = macb ? PyTuple_Pack(2, macb, tags) : NULL;
    Py_XDECREF(macb);
    Py_DECREF(tags);
    PyObject *kb = link ? PyBytes_FromStringAndSize((const char *)key, klen) : NULL;
    if (!kb) {
        Py_XDECREF(link);
        return NULL;
    }
    /* the newest becomes a, the old a becomes b */
    PyObject *old_key = PyList_GET_ITEM(w->links, 0), *old_link = PyList_GET_ITEM(w->links, 1);
    Py_INCREF(old_key);
    Py_INCREF(old_link);
    PyList_SetItem(w->links, 2, old_key);
    PyList_SetItem(w->links, 3, old_link);
    PyList_SetItem(w->links, 0, kb);
    Py_INCREF(link);
    PyList_SetItem(w->links, 1, link);
    return link;
}

static int append_datagram(Walk *w, long long frame, long long ts, const unsigned char *ip,
                           uint32_t sport, uint32_t dport, uint32_t ulen, PyObject *link)
{
    int bad = w->verify ? checksum_bad(ip, ulen, be16(ip + 26)) : 0;
    PyObject *d = w->dgram->tp_alloc(w->dgram, 10);
    if (!d) {
        Py_DECREF(link);
        return FAIL;
    }
    PyObject *items[10];
    items[0] = PyLong_FromLongLong(frame);
    items[1] = PyLong_FromLongLong(ts);
    uint32_t sa, da;
    memcpy(&sa, ip + 12, 4);
    memcpy(&da, ip + 16, 4);
    items[2] = cache_get(&w->addrs, sa, make_addr, ip + 12);
    items[3] = cache_get(&w->addrs, da, make_addr, ip + 16);
    items[4] = cache_get(&w->ports_seen, sport, make_port, NULL);
    items[5] = cache_get(&w->ports_seen, dport, make_port, NULL);
    items[6] = PyBytes_FromStringAndSize((const char *)ip + 28, ulen - 8);
    items[7] = w->zero;
    Py_INCREF(w->zero);
    items[8] = link;  /* the reference passed in is taken over */
    items[9] = bad ? Py_True : Py_False;
    Py_INCREF(items[9]);
    int ok = 1;
    for (int i = 0; i < 10; i++) {
        if (!items[i])
            ok = 0;
        PyTuple_SET_ITEM(d, i, items[i]);  /* a NULL slot is fine for the dealloc */
    }
    if (!ok || PyList_Append(w->out, d) < 0) {
        Py_DECREF(d);
        return FAIL;
    }
    Py_DECREF(d);
    return DONE;
}

/* The IPv4 and UDP part shared by every link type, the IPv4 header at p + ipo: what
 * fast_other() does from there. key/klen name the link identity (link tuple (addr, vids));
 * a NULL key means none (None). */
static int take_ip(Walk *w, const unsigned char *p, Py_ssize_t ipo, Py_ssize_t caplen,
                   long long frame, long long ts, const unsigned char *key, Py_ssize_t klen,
                   const unsigned char *addr, Py_ssize_t alen, const uint32_t *vids, int ntags)
{
    if (ipo + 28 > caplen)
        return PYTHON;
    const unsigned char *ip = p + ipo;
    uint32_t vihl = ip[0], proto = ip[9];
    if (vihl >> 4 != 4 || proto != 17)
        return (proto == 1 && vihl >> 4 == 4) ? PYTHON : DONE;
    if (vihl != 0x45 || (be16(ip + 6) & 0x3FFF))
        return PYTHON;
    uint32_t sport = be16(ip + 20), dport = be16(ip + 22);
    if (!port_wanted(w, sport) && !port_wanted(w, dport))
        return DONE;
    uint32_t totlen = be16(ip + 2), ulen = be16(ip + 24);
    if (ulen + 20 != totlen || ulen < 8 || ipo + (Py_ssize_t)totlen > caplen)
        return PYTHON;
    PyObject *link;
    if (key) {
        link = link_of(w, key, klen, addr, alen, vids, ntags);
        if (!link)
            return FAIL;
    } else {
        link = Py_None;
        Py_INCREF(link);
    }
    return append_datagram(w, frame, ts, ip, sport, dport, ulen, link);
}

/* One Ethernet frame of caplen bytes at p. DONE when it was taken or is of no interest
 * (as the Python walkers skip it), PYTHON when the Python walker must take it. *vlan is
 * set when the Python pcap walker would have gone through fast_other (it keeps that
 * frame's time). */
static int take_ethernet(Walk *w, const unsigned char *p, Py_ssize_t caplen, long long frame,
                         long long ts, int *vlan)
{
    *vlan = 0;
    if (caplen < 42)
        return PYTHON;
    uint32_t et = be16(p + 12);
    if (et == 0x0800 && p[14] == 0x45) {
        const unsigned char *ip = p + 14;
        uint32_t proto = ip[9];
        if (proto != 17)
            return proto == 1 ? PYTHON : DONE;
        if (be16(ip + 6) & 0x3FFF)
            return PYTHON;
        uint32_t sport = be16(ip + 20), dport = be16(ip + 22);
        if (!port_wanted(w, sport) && !port_wanted(w, dport))
            return DONE;
        uint32_t totlen = be16(ip + 2), ulen = be16(ip + 24);
        if (ulen + 20 != totlen || ulen < 8 || 14 + (Py_ssize_t)totlen > caplen)
            return PYTHON;
        unsigned char key[KEY_MAX];
        memcpy(key, p + 6, 6);
        PyObject *link = link_of(w, key, 6, p + 6, 6, NULL, 0);
        if (!link)
            return FAIL;
        return append_datagram(w, frame, ts, ip, sport, dport, ulen, link);
    }
    if (et == 0x0800)
        return PYTHON;
    if (et != 0x8100 && et != 0x88A8 && et != 0x9100)
        return DONE;
    /* VLAN-tagged: what fast_other does */
    *vlan = 1;
    uint32_t vids[MAX_TAGS];
    int ntags = 0;
    Py_ssize_t q = 12;
    while (et == 0x8100 || et == 0x88A8 || et == 0x9100) {
        if (q + 6 > caplen)  /* cannot happen past the 42-byte check; kept as fast_other has it */
            return DONE;
        if (ntags == MAX_TAGS)
            return PYTHON;
        vids[ntags++] = be16(p + q + 2) & 0x0FFF;
        et = be16(p + q + 4);
        q += 4;
    }
    if (et != 0x0800)
        return DONE;
    unsigned char key[KEY_MAX];
    memcpy(key, p + 6, 6);
    for (int i = 0; i < ntags; i++) {
        key[6 + 2 * i] = (unsigned char)(vids[i] >> 8);
        key[7 + 2 * i] = (unsigned char)vids[i];
    }
    key[6 + 2 * ntags] = (unsigned char)ntags;
    return take_ip(w, p, q + 2, caplen, frame, ts, key, 7 + 2 * ntags, p + 6, 6, vids, ntags);
}

/* A frame of another link type fast_other() takes: raw IPv4, Linux cooked (SLL, SLL2) or
 * BSD loopback. The Python walkers keep every such frame's time. */
static int take_other(Walk *w, int lt, const unsigned char *p, Py_ssize_t caplen,
                      long long frame, long long ts)
{
    switch (lt) {
    case 12: case 14: case 101: case 228:  /* raw IPv4 */
        return take_ip(w, p, 0, caplen, frame, ts, NULL, 0, NULL, 0, NULL, 0);
    case 113: {  /* SLL: packet type, ARPHRD, address length, 8 address bytes, protocol */
        if (caplen < 16 || be16(p + 14) != 0x0800 || p[4])
            return PYTHON;
        Py_ssize_t alen = p[5] < 8 ? p[5] : 8;
        unsigned char key[KEY_MAX];
        memcpy(key, p + 6, alen);
        return take_ip(w, p, 16, caplen, frame, ts, key, alen, p + 6, alen, NULL, 0);
    }
    case 276: {  /* SLL2: protocol, reserved, ifindex, ARPHRD, type, address length, address */
        if (caplen < 20 || be16(p) != 0x0800)
            return PYTHON;
        Py_ssize_t alen = p[11] < 8 ? p[11] : 8;
        unsigned char key[KEY_MAX];
        memcpy(key, p + 12, alen);
        return take_ip(w, p, 20, caplen, frame, ts, key, alen, p + 12, alen, NULL, 0);
    }
    case 0: case 108: {  /* BSD loopback: the address family, in either byte order */
        if (caplen < 4)
            return DONE;
        uint32_t le = rd32(p, 0), be = rd32(p, 1);
        if (le != 2 && be != 2)
            return DONE;
        return take_ip(w, p, 4, caplen, frame, ts, NULL, 0, NULL, 0, NULL, 0);
    }
    }
    return PYTHON;
}

static int take_frame(Walk *w, int lt, const unsigned char *p, Py_ssize_t caplen,
                      long long frame, long long ts, int *keeps_time)
{
    if (lt == 1)
        return take_ethernet(w, p, caplen, frame, ts, keeps_time);
    *keeps_time = 1;
    return take_other(w, lt, p, caplen, frame, ts);
}

static int walk_init(Walk *w, PyObject *dgram, PyObject *out, Py_buffer *ports, int verify,
                     PyObject *links, const Py_buffer *b, Py_ssize_t pos)
{
    if (pos < 0 || pos > b->len) {
        PyErr_SetString(PyExc_ValueError, "pos out of range");
        return -1;
    }
    if (!PyType_Check(dgram) || !PyType_IsSubtype((PyTypeObject *)dgram, &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "dgram must be a tuple type");
        return -1;
    }
    if (!PyList_Check(out) || !PyList_Check(links) || PyList_GET_SIZE(links) != 4) {
        PyErr_SetString(PyExc_TypeError, "out must be a list, links a list of 4");
        return -1;
    }
    if (ports->len != 8192) {
        PyErr_SetString(PyExc_ValueError, "ports must be a 8192-byte bitmap");
        return -1;
    }
    w->dgram = (PyTypeObject *)dgram;
    w->out = out;
    w->ports = ports->buf;
    w->verify = verify;
    w->links = links;
    w->zero = PyLong_FromLong(0);
    return 0;
}

/* What every walker lets go of, whether it succeeded or not. */
static void walk_release(Walk *w, Py_buffer *b, Py_buffer *ports)
{
    Py_XDECREF(w->zero);
    cache_clear(&w->addrs);
    cache_clear(&w->ports_seen);
    PyBuffer_Release(b);
    PyBuffer_Release(ports);
}

static PyObject *result(Py_ssize_t pos, long long frame, int have_ts, long long ts)
{
    if (have_ts)
        return Py_BuildValue("(nLL)", pos, frame, ts);
    return Py_BuildValue("(nLO)", pos, frame, Py_None);
}

/* walk_pcap(buf, pos, frame, big_endian, frac_mul, limit, linktype, ports, verify, out,
 *           Datagram, links) -> (pos, frame, ts or None)
 * Records of a pcap file from pos on; stops before the first record that is not whole in
 * buf, claims more than limit bytes, or needs the Python walker. ts is the time of the last
 * frame walked. */
static PyObject *walk_pcap(PyObject *self, PyObject *args)
{
    Py_buffer b, ports;
    Py_ssize_t pos, limit;
    long long frame, frac_mul;
    int big, lt, verify;
    PyObject *out, *dgram, *links;
    if (!PyArg_ParseTuple(args, "y*nLpLniy*pOOO", &b, &pos, &frame, &big, &frac_mul, &limit,
                          &lt, &ports, &verify, &out, &dgram, &links))
        return NULL;
    Walk w = {0};
    PyObject *ret = NULL;
    int have_ts = 0;
    long long last_ts = 0;
    if (walk_init(&w, dgram, out, &ports, verify, links, &b, pos) < 0)
        goto done;
    const unsigned char *buf = b.buf;
    Py_ssize_t n = b.len;
    while (n - pos >= 16) {
        const unsigned char *r = buf + pos;
        uint32_t caplen = rd32(r + 8, big);
        if (caplen > (uint64_t)limit || (Py_ssize_t)caplen > n - pos - 16)
            break;
        long long ts = (long long)rd32(r, big) * 1000000000LL + (long long)rd32(r + 4, big) * frac_mul;
        int vlan;
        int k = take_frame(&w, lt, r + 16, caplen, frame + 1, ts, &vlan);
        if (k == FAIL)
            goto done;
        if (k == PYTHON)
            break;
        (void)vlan;
        have_ts = 1;
        last_ts = ts;
        pos += 16 + caplen;
        frame += 1;
    }
    ret = result(pos, frame, have_ts, last_ts);
done:
    walk_release(&w, &b, &ports);
    return ret;
}

/* walk_pcapng(buf, pos, frame, big_endian, ifaces, ports, verify, out, Datagram, links)
 *     -> (pos, frame, ts or None)
 * Enhanced packet blocks from pos on. ifaces holds, per interface of the section, the
 * multiplier to nanoseconds, the offset in nanoseconds and the link type when the interface
 * has a link type these loops take and a decimal clock of at most nanosecond resolution,
 * else None. Stops before any
 * other block, any block the Python walker would question, and any frame it must take;
 * ts is the time of the last packet block walked. */
static PyObject *walk_pcapng(PyObject *self, PyObject *args)
{
    Py_buffer b, ports;
    Py_ssize_t pos;
    long long frame;
    int big, verify;
    PyObject *ifaces, *out, *dgram, *links;
    if (!PyArg_ParseTuple(args, "y*nLpOy*pOOO", &b, &pos, &frame, &big, &ifaces, &ports,
                          &verify, &out, &dgram, &links))
        return NULL;
    Walk w = {0};
    PyObject *ret = NULL;
    int have_ts = 0;
    long long last_ts = 0;
    enum { NIF = 64 };
    long long mul[NIF], off[NIF];
    int fast[NIF], lts[NIF];
    Py_ssize_t nif = 0;
    if (walk_init(&w, dgram, out, &ports, verify, links, &b, pos) < 0)
        goto done;
    if (!PyList_Check(ifaces)) {
        PyErr_SetString(PyExc_TypeError, "ifaces must be a list");
        goto done;
    }
    nif = PyList_GET_SIZE(ifaces);
    if (nif > NIF)
        nif = NIF;  /* packets on the others go to the Python walker */
    for (Py_ssize_t i = 0; i < nif; i++) {
        PyObject *t = PyList_GET_ITEM(ifaces, i);
        fast[i] = 0;
        if (t != Py_None) {
            if (!PyTuple_Check(t)) {
                PyErr_SetString(PyExc_TypeError, "ifaces entries must be (mul, off, lt) or None");
                goto done;
            }
            if (!PyArg_ParseTuple(t, "LLi", &mul[i], &off[i], &lts[i]))
                goto done;
            fast[i] = 1;
        }
    }
    const unsigned char *buf = b.buf;
    Py_ssize_t n = b.len;
    while (n - pos >= 12) {
        const unsigned char *r = buf + pos;
        uint32_t btype = rd32(r, big), blen = rd32(r + 4, big);
        if (btype != EPB_TYPE || blen < 32 || (blen & 3) || blen > MAX_BLOCK
                || (Py_ssize_t)blen > n - pos || memcmp(r + blen - 4, r + 4, 4) != 0)
            break;
        uint32_t iface = rd32(r + 8, big), caplen = rd32(r + 20, big);
        if (caplen > blen - 32 || caplen > MAX_CAPLEN || iface >= (uint64_t)nif || !fast[iface])
            break;
        uint64_t units = (uint64_t)rd32(r + 12, big) << 32 | rd32(r + 16, big);
        long long scaled, ts;
        if (units > (uint64_t)LLONG_MAX
                || __builtin_mul_overflow((long long)units, mul[iface], &scaled)
                || __builtin_add_overflow(scaled, off[iface], &ts))
            break;
        int vlan;
        int k = take_frame(&w, lts[iface], r + 28, caplen, frame + 1, ts, &vlan);
        if (k == FAIL)
            goto done;
        if (k == PYTHON)
            break;
        have_ts = 1;
        last_ts = ts;
        pos += blen;
        frame += 1;
    }
    ret = result(pos, frame, have_ts, last_ts);
done:
    walk_release(&w, &b, &ports);
    return ret;
}

/* new_tuple(cls, *items): an instance of the tuple subclass cls (a named tuple) holding
 * items, without the argument tuple that tuple.__new__(cls, items) needs. The protocol
 * core makes one per message and per ACK. */
static PyObject *new_tuple(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs < 1 || !PyType_Check(args[0])
            || !PyType_IsSubtype((PyTypeObject *)args[0], &PyTuple_Type)) {
        PyErr_SetString(PyExc_TypeError, "new_tuple(cls, *items): cls must be a tuple type");
        return NULL;
    }
    PyTypeObject *cls = (PyTypeObject *)args[0];
    PyObject *t = cls->tp_alloc(cls, nargs - 1);
    if (!t)
        return NULL;
    for (Py_ssize_t i = 1; i < nargs; i++) {
        Py_INCREF(args[i]);
        PyTuple_SET_ITEM(t, i - 1, args[i]);
    }
    return t;
}

static PyMethodDef methods[] = {
    {"new_tuple", (PyCFunction)(void (*)(void))new_tuple, METH_FASTCALL,
     "An instance of a tuple subclass from its items."},
    {"walk_pcap", walk_pcap, METH_VARARGS, "Compiled inner loop of the pcap walker."},
    {"walk_pcapng", walk_pcapng, METH_VARARGS, "Compiled inner loop of the pcapng walker."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "analyzer._speedups",
    "Compiled inner loops of the capture walkers, and a named-tuple constructor.", -1, methods,
};

PyMODINIT_FUNC PyInit__speedups(void) { return PyModule_Create(&module); }
