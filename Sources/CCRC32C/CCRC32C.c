#include "CCRC32C.h"

#include <string.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#define CUSTODY_CRC_X86 1
#elif defined(__aarch64__) && defined(__linux__)
#include <arm_acle.h>
#include <sys/auxv.h>
#include <asm/hwcap.h>
#define CUSTODY_CRC_ARM 1
#endif

#define POLY 0x82F63B78u

static uint32_t table[8][256];
static int table_ready = 0;

static void build_table(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++) {
            c = (c & 1) ? (c >> 1) ^ POLY : c >> 1;
        }
        table[0][n] = c;
    }
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = table[0][n];
        for (int k = 1; k < 8; k++) {
            c = table[0][c & 0xFF] ^ (c >> 8);
            table[k][n] = c;
        }
    }
    __atomic_store_n(&table_ready, 1, __ATOMIC_RELEASE);
}

uint32_t custody_crc32c_update_portable(uint32_t crc, const void *data, size_t length) {
    // Building the table twice from two threads is harmless: both write the same values.
    if (!__atomic_load_n(&table_ready, __ATOMIC_ACQUIRE)) {
        build_table();
    }
    const uint8_t *p = (const uint8_t *)data;
    uint32_t c = ~crc;
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        word = __builtin_bswap64(word);
#endif
        uint32_t lo = (uint32_t)word ^ c;
        uint32_t hi = (uint32_t)(word >> 32);
        c = table[7][lo & 0xFF] ^ table[6][(lo >> 8) & 0xFF] ^ table[5][(lo >> 16) & 0xFF] ^ table[4][lo >> 24] ^
            table[3][hi & 0xFF] ^ table[2][(hi >> 8) & 0xFF] ^ table[1][(hi >> 16) & 0xFF] ^ table[0][hi >> 24];
        p += 8;
        length -= 8;
    }
    while (length--) {
        c = table[0][(c ^ *p++) & 0xFF] ^ (c >> 8);
    }
    return ~c;
}

#if defined(CUSTODY_CRC_X86)
__attribute__((target("sse4.2"))) static uint32_t crc_hardware(uint32_t crc, const void *data, size_t length) {
    const uint8_t *p = (const uint8_t *)data;
    uint64_t c = ~crc;
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        c = _mm_crc32_u64(c, word);
        p += 8;
        length -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (length--) {
        c32 = _mm_crc32_u8(c32, *p++);
    }
    return ~c32;
}
static int detect_hardware(void) { return __builtin_cpu_supports("sse4.2") ? 1 : 0; }
#elif defined(CUSTODY_CRC_ARM)
__attribute__((target("crc"))) static uint32_t crc_hardware(uint32_t crc, const void *data, size_t length) {
    const uint8_t *p = (const uint8_t *)data;
    uint32_t c = ~crc;
    while (length >= 8) {
        uint64_t word;
        memcpy(&word, p, 8);
        c = __crc32cd(c, word);
        p += 8;
        length -= 8;
    }
    while (length--) {
        c = __crc32cb(c, *p++);
    }
    return ~c;
}
static int detect_hardware(void) { return (getauxval(AT_HWCAP) & HWCAP_CRC32) ? 1 : 0; }
#else
static uint32_t crc_hardware(uint32_t crc, const void *data, size_t length) {
    return custody_crc32c_update_portable(crc, data, length);
}
static int detect_hardware(void) { return 0; }
#endif

// -1 unknown, 0 portable, 1 hardware. Detection is idempotent, so a race only repeats it.
static int hardware_state = -1;

int custody_crc32c_hardware_available(void) {
    int state = __atomic_load_n(&hardware_state, __ATOMIC_RELAXED);
    if (state < 0) {
        state = detect_hardware();
        __atomic_store_n(&hardware_state, state, __ATOMIC_RELAXED);
    }
    return state;
}

uint32_t custody_crc32c_update(uint32_t crc, const void *data, size_t length) {
    if (custody_crc32c_hardware_available()) {
        return crc_hardware(crc, data, length);
    }
    return custody_crc32c_update_portable(crc, data, length);
}
