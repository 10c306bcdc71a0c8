/*
 * The exec trampoline: the program a container's init executes last, from
 * a sealed memfd, so that the process which then executes the user's
 * program is not the rcrun binary (CVE-2019-5736; see trampoline.rs).
 *
 * Built by build.rs as a static executable without a C library:
 *   argv[0]  "KIND,STAGE,SYNC,ERR,FIFO": five decimal numbers; SYNC, ERR
 *            and FIFO are fds (-1 for none)
 *   argv[1]  the path of the program to execute
 *   argv[2…] its argv, argv[0] included
 * It marks SYNC, ERR and FIFO close-on-exec, so that they close when the
 * user's program starts (which is how the runtime learns that it did),
 * and calls execve. If that fails it reports the errno as the init does,
 * a 16-byte message {KIND, STAGE, 0, errno}: sent on the SYNC socket and
 * written at the start of the ERR file, then exits with status 1.
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

enum { SYS_pwrite64 = 18, SYS_sendto = 44, SYS_execve = 59, SYS_fcntl = 72, SYS_exit_group = 231 };
enum { F_SETFD = 2, FD_CLOEXEC = 1, MSG_NOSIGNAL = 0x4000 };

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

/* Parses the header into *m and fds; returns 0 if it is malformed. */
static int header(const char *h, struct msg *m, int fds[3])
{
	if (!number(&h, ',', &m->kind) || !number(&h, ',', &m->stage))
		return 0;
	for (int i = 0; i < 3; i++) {
		if (!number(&h, i < 2 ? ',' : 0, &fds[i]))
			return 0;
		/* Only -1 or an fd above stdio. */
		if (fds[i] < -1 || (fds[i] >= 0 && fds[i] < 3))
			return 0;
	}
	return 1;
}

__attribute__((noreturn, used)) void trampoline(i64 *sp)
{
	i64 argc = sp[0];
	char **argv = (char **)(sp + 1);
	char **envp = argv + argc + 1;
	struct msg m = { 0, 0, 0, 0 };
	int fds[3] = { -1, -1, -1 };
	if (argc < 2 || !header(argv[0], &m, fds))
		for (;;)
			sys(SYS_exit_group, 127, 0, 0, 0, 0);
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
	for (;;)
		sys(SYS_exit_group, 1, 0, 0, 0, 0);
}

__asm__(".globl _start\n"
	"_start:\n"
	"	mov %rsp, %rdi\n"
	"	and $-16, %rsp\n"
	"	call trampoline\n");
