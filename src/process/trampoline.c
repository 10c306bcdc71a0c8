/*
 * The exec trampoline: the program a container's init executes last, from
 * a sealed memfd, so that the process which then executes the user's
 * program is not the rcrun binary (CVE-2019-5736; see trampoline.rs).
 *
 * Built by build.rs as a static executable without a C library:
 *   argv[0]  "KIND,STAGE,SYNC,ERR,FIFO,READY,GO": seven decimal numbers;
 *            SYNC, ERR and FIFO are fds (-1 for none), READY and GO
 *            message kinds (0 for none)
 *   argv[1]  the path of the program to execute (absent: none)
 *   argv[2…] its argv, argv[0] included
 * The container's init executes it as soon as the container is set up,
 * and it waits there for `start`, so that no process in a created
 * container is ever the rcrun binary. It makes itself non-dumpable (as
 * the init was), tells the runtime READY on the SYNC socket, then waits:
 * for a byte on the exec FIFO (`create`, released by `start`), or for a
 * GO message on SYNC (`run`). Then it marks SYNC, ERR and FIFO
 * close-on-exec, so that they close when the user's program starts (which
 * is how the runtime learns that it did), and calls execve; with no
 * program (a config without `process`) it exits with status 0 instead.
 * If the execve fails it reports the errno as the init does, a 16-byte
 * message {KIND, STAGE, 0, errno}: sent on the SYNC socket and written
 * at the start of the ERR file, then exits with status 1. A failed wait
 * (the runtime went away) exits with status 1.
 * Run any other way (a malformed header, such as when a container's
 * program is `#!/proc/self/exe` and the kernel executes the trampoline
 * as its interpreter), it does nothing and exits with status 127.
 */

typedef long i64;
struct msg { int kind, stage; unsigned index; int err; };

static i64 sys(i64 n, i64 a, i64 b, i64 c, i64 d, i64 e)
{
	register i64 r10 __asm__("r10") = d;
	register i64 r8 __asm__("r8") = e;
	i64 ret;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8)
			 : "rcx", "r11", "memory");
	return ret;
}

enum {
	SYS_read = 0, SYS_poll = 7, SYS_pwrite64 = 18, SYS_sendto = 44, SYS_recvfrom = 45,
	SYS_execve = 59, SYS_fcntl = 72, SYS_prctl = 157, SYS_exit_group = 231
};
enum {
	F_SETFD = 2, FD_CLOEXEC = 1, MSG_NOSIGNAL = 0x4000, PR_SET_DUMPABLE = 4,
	POLLIN = 1, EINTR = 4, EAGAIN = 11
};

static __attribute__((noreturn)) void leave(int code)
{
	for (;;)
		sys(SYS_exit_group, code, 0, 0, 0, 0);
}

/*
 * Parses one number of the header and the separator `end` after it into
 * *v; advances *p past both. Returns 0 if they are not there.
 */
static int number(const char **p, char end, int *v)
{
	const char *s = *p;
	int neg = 0, n = 0, digits = 0;
	if (*s == '-') {
		neg = 1;
		s++;
	}
	while (*s >= '0' && *s <= '9' && digits < 9) {
		n = n * 10 + (*s++ - '0');
		digits++;
	}
	if (!digits || *s != end)
		return 0;
	*p = s + 1;
	*v = neg ? -n : n;
	return 1;
}

/*
 * Parses the header into *m, fds and kinds (READY, GO); returns 0 if it
 * is malformed.
 */
static int header(const char *h, struct msg *m, int fds[3], int kinds[2])
{
	if (!number(&h, ',', &m->kind) || !number(&h, ',', &m->stage))
		return 0;
	for (int i = 0; i < 3; i++) {
		if (!number(&h, ',', &fds[i]))
			return 0;
		/* Only -1 or an fd above stdio. */
		if (fds[i] < -1 || (fds[i] >= 0 && fds[i] < 3))
			return 0;
	}
	for (int i = 0; i < 2; i++)
		if (!number(&h, i < 1 ? ',' : 0, &kinds[i]) || kinds[i] < 0)
			return 0;
	/* A wait needs the fd it waits on. */
	return (!kinds[0] || fds[0] >= 0) && (!kinds[1] || fds[0] >= 0);
}

/* Blocks until `start` writes a byte to the exec fifo `fd` (opened
 * non-blocking before any writer existed); 0 if a writer left first. */
static int wait_fifo(int fd)
{
	struct { int fd; short events, revents; } p = { fd, POLLIN, 0 };
	char b;
	for (;;) {
		i64 r = sys(SYS_poll, (i64)&p, 1, -1, 0, 0);
		if (r < 0 && r != -EINTR)
			return 0;
		r = sys(SYS_read, fd, (i64)&b, 1, 0, 0);
		if (r == 1)
			return 1;
		if (r == 0 || (r != -EAGAIN && r != -EINTR))
			return 0;
	}
}

/* Blocks until the runtime sends message `kind` on socket `fd`; 0 if it
 * sent anything else or went away. */
static int wait_message(int fd, int kind)
{
	int k = 0;
	for (;;) {
		/* SOCK_SEQPACKET: a longer message is truncated to its kind. */
		i64 r = sys(SYS_recvfrom, fd, (i64)&k, sizeof k, 0, 0);
		if (r == -EINTR)
			continue;
		return r == sizeof k && k == kind;
	}
}

__attribute__((noreturn, used)) void trampoline(i64 *sp)
{
	i64 argc = sp[0];
	char **argv = (char **)(sp + 1);
	char **envp = argv + argc + 1;
	struct msg m = { 0, 0, 0, 0 };
	int fds[3] = { -1, -1, -1 }, kinds[2] = { 0, 0 };
	if (argc < 1 || !header(argv[0], &m, fds, kinds))
		leave(127);
	/* Nothing in the container may ptrace us or open our fds while we
	 * hold the runtime's (the exec of the program makes it dumpable). */
	if (sys(SYS_prctl, PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		leave(1);
	if (kinds[0]) {
		struct msg ready = { kinds[0], 0, 0, 0 };
		if (sys(SYS_sendto, fds[0], (i64)&ready, sizeof ready, MSG_NOSIGNAL, 0) < 0)
			leave(1);
	}
	if (fds[2] >= 0 ? !wait_fifo(fds[2]) : kinds[1] && !wait_message(fds[0], kinds[1]))
		leave(1);
	if (argc < 2)
		leave(0);
	{
		i64 r = 0;
		for (int i = 0; i < 3 && r >= 0; i++)
			if (fds[i] >= 0)
				r = sys(SYS_fcntl, fds[i], F_SETFD, FD_CLOEXEC, 0, 0);
		if (r >= 0)
			r = sys(SYS_execve, (i64)argv[1], (i64)(argv + 2), (i64)envp, 0, 0);
		m.err = (int)-r;
	}
	if (fds[0] >= 0)
		sys(SYS_sendto, fds[0], (i64)&m, sizeof m, MSG_NOSIGNAL, 0);
	if (fds[1] >= 0)
		sys(SYS_pwrite64, fds[1], (i64)&m, sizeof m, 0, 0);
	leave(1);
}

__asm__(".globl _start\n"
	"_start:\n"
	"	mov %rsp, %rdi\n"
	"	and $-16, %rsp\n"
	"	call trampoline\n");
