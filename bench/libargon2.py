"""libargon2 (the reference C implementation, through argon2-cffi) verifying
argon2id for S seconds on one thread with the parameters new password hashes
get; prints one line for bench/run:

    NATIVE-LIBARGON2 argon2id m=7168 t=5 p=1 threads=1 verifies=247 seconds=5.00 per_core_per_s=49.4 ms_per_verify=20.24

Issue 32 measured "native" with this library; tools/argon2-baseline measures
the argon2 crate the login component runs, compiled natively. Both rows go
into the report, since they differ by almost two.

    python3 bench/libargon2.py SECONDS M T P
"""

import sys
import time

from argon2.low_level import Type, hash_secret, verify_secret


def main():
    seconds, m, t, p = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    password = b"bench-password-123"
    phc = hash_secret(password, b"bench-salt-16byt", time_cost=t, memory_cost=m,
                      parallelism=p, hash_len=32, type=Type.ID)
    verify_secret(phc, password, Type.ID)  # warm: the first call maps the memory
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        verify_secret(phc, password, Type.ID)
        n += 1
    took = time.perf_counter() - start
    print(f"NATIVE-LIBARGON2 argon2id m={m} t={t} p={p} threads=1 verifies={n} "
          f"seconds={took:.2f} per_core_per_s={n / took:.1f} ms_per_verify={took / n * 1000:.2f}")


if __name__ == "__main__":
    main()
