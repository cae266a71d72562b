/**
 * Store contract, stored keys: create, look up (id, name, hash), list order, update field by
 * field, rename onto a taken name, rotate the secret, delete; expiry and policy round trips.
 */
import { expect } from 'vitest';
import { KeyNameTaken } from '../../src/store/errors.js';
import type { KeyPolicy, Store, StoredKey } from '../../src/contract.js';
import { newKey, type StoreCase } from './store-contract-fixtures.js';

async function expectNameTaken(promise: Promise<unknown>, name: string): Promise<void> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(KeyNameTaken);
  expect((err as KeyNameTaken).keyName).toBe(name);
}

/** The key through every read path at once: getKey by id and by name, findKeyByHash, listKeys. */
async function readBack(store: Store, id: string, name: string, hash: string): Promise<StoredKey[]> {
  const listed = (await store.listKeys()).find((k) => k.id === id);
  return [(await store.getKey(id))!, (await store.getKey(name))!, (await store.findKeyByHash(hash))!, listed!];
}

export const keyCases: StoreCase[] = [
  {
    name: 'createKey answers the key as stored, without its hash, and every read path agrees',
    async run(store) {
      const created = await store.createKey(
        newKey({ id: 'key_1', name: 'alice', notes: 'team A', hash: 'h-alice', prefix: 'pgpt-AbCd', policy: { requestsPerHour: 10 }, now: 1_700_000_000_123 }),
      );
      const expected: StoredKey = {
        id: 'key_1',
        name: 'alice',
        notes: 'team A',
        prefix: 'pgpt-AbCd',
        createdAt: 1_700_000_000_123,
        updatedAt: 1_700_000_000_123,
        expiresAt: null,
        disabled: false,
        policy: { requestsPerHour: 10 },
      };
      expect(created).toStrictEqual(expected);
      for (const read of await readBack(store, 'key_1', 'alice', 'h-alice')) expect(read).toStrictEqual(expected);
    },
  },
  {
    name: 'getKey finds by id or by name (case-sensitive); an id wins over another key named like it; unknown is null',
    async run(store) {
      await store.createKey(newKey({ id: 'id_a', name: 'id_b' }));
      await store.createKey(newKey({ id: 'id_b', name: 'bee' }));
      expect((await store.getKey('id_b'))?.name).toBe('bee');
      expect((await store.getKey('bee'))?.id).toBe('id_b');
      expect((await store.getKey('id_a'))?.name).toBe('id_b');
      expect(await store.getKey('BEE')).toBeNull();
      expect(await store.getKey('nobody')).toBeNull();
      expect(await store.getKey('')).toBeNull();
    },
  },
  {
    name: 'findKeyByHash finds exactly the key with that hash, or null',
    async run(store) {
      await store.createKey(newKey({ id: 'k1', name: 'one', hash: 'aa11' }));
      await store.createKey(newKey({ id: 'k2', name: 'two', hash: 'bb22' }));
      expect((await store.findKeyByHash('aa11'))?.id).toBe('k1');
      expect((await store.findKeyByHash('bb22'))?.id).toBe('k2');
      expect(await store.findKeyByHash('AA11')).toBeNull();
      expect(await store.findKeyByHash('aa1')).toBeNull();
      expect(await store.findKeyByHash('k1')).toBeNull();
    },
  },
  {
    name: 'listKeys: empty at first, then by creation time, equal times by id in byte order (upper case first)',
    async run(store) {
      expect(await store.listKeys()).toStrictEqual([]);
      await store.createKey(newKey({ id: 'k_b', name: 'n1', now: 2_000 }));
      await store.createKey(newKey({ id: 'k_a', name: 'n2', now: 3_000 }));
      await store.createKey(newKey({ id: 'K_c', name: 'n3', now: 2_000 }));
      await store.createKey(newKey({ id: 'k_d', name: 'n4', now: 1_000 }));
      await store.createKey(newKey({ id: 'k_0', name: 'n5', now: 2_000 }));
      expect((await store.listKeys()).map((k) => k.id)).toStrictEqual(['k_d', 'K_c', 'k_0', 'k_b', 'k_a']);
    },
  },
  {
    name: 'createKey with a taken name throws KeyNameTaken and stores nothing; names differing in case are distinct',
    async run(store) {
      await store.createKey(newKey({ id: 'key_1', name: 'alice' }));
      await expectNameTaken(store.createKey(newKey({ id: 'key_2', name: 'alice', hash: 'h2' })), 'alice');
      expect((await store.listKeys()).map((k) => k.id)).toStrictEqual(['key_1']);
      expect(await store.findKeyByHash('h2')).toBeNull();
      expect(await store.getKey('key_2')).toBeNull();
      await store.createKey(newKey({ id: 'key_3', name: 'Alice', hash: 'h3' }));
      expect((await store.getKey('Alice'))?.id).toBe('key_3');
    },
  },
  {
    name: 'concurrent createKey with one name: exactly one wins, the others get KeyNameTaken',
    async run(store) {
      const attempts = await Promise.allSettled(
        [1, 2, 3, 4, 5].map((i) => store.createKey(newKey({ id: `key_${i}`, name: 'shared', hash: `h${i}` }))),
      );
      const won = attempts.filter((a) => a.status === 'fulfilled');
      const lost = attempts.filter((a): a is PromiseRejectedResult => a.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(4);
      for (const l of lost) expect(l.reason).toBeInstanceOf(KeyNameTaken);
      expect(await store.listKeys()).toHaveLength(1);
    },
  },
  {
    name: 'updateKey changes only the patched fields, sets updatedAt, and answers what getKey then reads',
    async run(store) {
      await store.createKey(newKey({ id: 'k', name: 'alice', notes: 'old', hash: 'h', expiresAt: 9_000, policy: { requestsPerDay: 5 }, now: 1_000 }));
      let expected: StoredKey = {
        id: 'k', name: 'alice', notes: 'old', prefix: 'pgpt-Test', createdAt: 1_000, updatedAt: 1_000, expiresAt: 9_000, disabled: false, policy: { requestsPerDay: 5 },
      };
      const steps: [Parameters<Store['updateKey']>[1], number, Partial<StoredKey>][] = [
        [{ name: 'bob' }, 2_000, { name: 'bob' }],
        [{ notes: 'new notes' }, 3_000, { notes: 'new notes' }],
        [{ notes: '' }, 3_500, { notes: '' }],
        [{ expiresAt: 50_000 }, 4_000, { expiresAt: 50_000 }],
        [{ expiresAt: null }, 5_000, { expiresAt: null }],
        [{ disabled: true }, 6_000, { disabled: true }],
        [{ disabled: false }, 7_000, { disabled: false }],
        // A policy is replaced whole, not merged.
        [{ policy: { models: ['gpt-4o*'] } }, 8_000, { policy: { models: ['gpt-4o*'] } }],
        [{}, 9_000, {}],
        [{ name: 'carol', notes: 'both', disabled: true, expiresAt: 1, policy: {} }, 10_000, { name: 'carol', notes: 'both', disabled: true, expiresAt: 1, policy: {} }],
      ];
      for (const [patch, now, change] of steps) {
        expected = { ...expected, ...change, updatedAt: now };
        expect(await store.updateKey('k', patch, now), JSON.stringify(patch)).toStrictEqual(expected);
        expect(await store.getKey('k')).toStrictEqual(expected);
      }
      expect((await store.findKeyByHash('h'))?.name).toBe('carol');
    },
  },
  {
    name: 'updateKey of an unknown id answers null and creates nothing',
    async run(store) {
      expect(await store.updateKey('ghost', { name: 'ghost', disabled: true }, 5)).toBeNull();
      expect(await store.listKeys()).toStrictEqual([]);
    },
  },
  {
    name: 'renaming onto a taken name throws KeyNameTaken and applies none of the patch; its own name is fine',
    async run(store) {
      await store.createKey(newKey({ id: 'a', name: 'alice', now: 1_000 }));
      const bob = await store.createKey(newKey({ id: 'b', name: 'bob', notes: 'kept', now: 1_000 }));
      await expectNameTaken(store.updateKey('b', { name: 'alice', notes: 'changed' }, 2_000), 'alice');
      expect(await store.getKey('b')).toStrictEqual(bob);
      expect((await store.getKey('alice'))?.id).toBe('a');
      expect(await store.updateKey('b', { name: 'bob', notes: 'again' }, 3_000)).toStrictEqual({ ...bob, notes: 'again', updatedAt: 3_000 });
    },
  },
  {
    name: 'setKeySecret replaces hash and prefix and sets updatedAt; the old hash finds nothing; unknown id is null',
    async run(store) {
      const before = await store.createKey(newKey({ id: 'k', name: 'alice', hash: 'old-hash', prefix: 'pgpt-Old', now: 1_000 }));
      const after = await store.setKeySecret('k', 'new-hash', 'pgpt-New', 2_000);
      expect(after).toStrictEqual({ ...before, prefix: 'pgpt-New', updatedAt: 2_000 });
      expect(await store.findKeyByHash('old-hash')).toBeNull();
      expect(await store.findKeyByHash('new-hash')).toStrictEqual(after);
      expect(await store.setKeySecret('ghost', 'x', 'pgpt-X', 3_000)).toBeNull();
      expect(await store.findKeyByHash('x')).toBeNull();
    },
  },
  {
    name: 'deleteKey removes the key from every read path, answers false the second time, and frees its name',
    async run(store) {
      await store.createKey(newKey({ id: 'a', name: 'alice', hash: 'ha' }));
      const bob = await store.createKey(newKey({ id: 'b', name: 'bob', hash: 'hb' }));
      expect(await store.deleteKey('a')).toBe(true);
      expect(await store.deleteKey('a')).toBe(false);
      expect(await store.deleteKey('ghost')).toBe(false);
      expect(await store.getKey('a')).toBeNull();
      expect(await store.getKey('alice')).toBeNull();
      expect(await store.findKeyByHash('ha')).toBeNull();
      expect(await store.listKeys()).toStrictEqual([bob]);
      await store.createKey(newKey({ id: 'a2', name: 'alice', hash: 'ha2' }));
      expect((await store.getKey('alice'))?.id).toBe('a2');
    },
  },
  {
    name: 'expiresAt round-trips: null, small, past 2^31 and 2^32, and the last valid Date',
    async run(store) {
      const values = [null, 1_000, 2 ** 31 + 7, 2 ** 32 + 1, 1_900_000_000_123, 8_640_000_000_000_000];
      for (const [i, expiresAt] of values.entries()) {
        await store.createKey(newKey({ id: `k${i}`, name: `n${i}`, hash: `h${i}`, expiresAt }));
        for (const read of await readBack(store, `k${i}`, `n${i}`, `h${i}`)) expect(read.expiresAt).toBe(expiresAt);
      }
      await store.updateKey('k0', { expiresAt: 2 ** 40 }, 5);
      expect((await store.getKey('k0'))?.expiresAt).toBe(2 ** 40);
    },
  },
  {
    name: 'policy round-trips every field, nulls, empty lists and odd strings; undefined fields are left out',
    async run(store) {
      const policies: [KeyPolicy, KeyPolicy][] = [
        [
          {
            requestsPerHour: 60,
            requestsPerDay: 1_000,
            tokensPerHour: 2_147_483_648,
            tokensPerDay: 9_007_199_254_740_991,
            usdPerDay: 0.1,
            usdPerMonth: 12.345,
            endpoints: ['POST /v1/chat/completions', 'GET /v1/models/*'],
            models: ['gpt-4o*', 'o3-mini'],
            ips: ['10.0.0.0/8', '2001:db8::/32', '127.0.0.1'],
          },
          {
            requestsPerHour: 60,
            requestsPerDay: 1_000,
            tokensPerHour: 2_147_483_648,
            tokensPerDay: 9_007_199_254_740_991,
            usdPerDay: 0.1,
            usdPerMonth: 12.345,
            endpoints: ['POST /v1/chat/completions', 'GET /v1/models/*'],
            models: ['gpt-4o*', 'o3-mini'],
            ips: ['10.0.0.0/8', '2001:db8::/32', '127.0.0.1'],
          },
        ],
        [
          { requestsPerHour: null, requestsPerDay: null, tokensPerHour: null, tokensPerDay: null, usdPerDay: null, usdPerMonth: null, endpoints: null, models: null, ips: null },
          { requestsPerHour: null, requestsPerDay: null, tokensPerHour: null, tokensPerDay: null, usdPerDay: null, usdPerMonth: null, endpoints: null, models: null, ips: null },
        ],
        [{}, {}],
        [{ endpoints: [], models: [], ips: [] }, { endpoints: [], models: [], ips: [] }],
        [{ usdPerDay: 0, usdPerMonth: 1e-6, models: ['modèle-ü', 'emoji-🙂', 'quote"back\\slash', "it's", '{a,b}'] }, { usdPerDay: 0, usdPerMonth: 1e-6, models: ['modèle-ü', 'emoji-🙂', 'quote"back\\slash', "it's", '{a,b}'] }],
        [{ requestsPerHour: undefined, requestsPerDay: 3 }, { requestsPerDay: 3 }],
      ];
      for (const [i, [given, expected]] of policies.entries()) {
        const created = await store.createKey(newKey({ id: `k${i}`, name: `n${i}`, hash: `h${i}`, policy: given }));
        expect(created.policy, `policy ${i}`).toStrictEqual(expected);
        for (const read of await readBack(store, `k${i}`, `n${i}`, `h${i}`)) expect(read.policy, `policy ${i}`).toStrictEqual(expected);
        // The same through updateKey, onto a key that had another policy.
        await store.createKey(newKey({ id: `u${i}`, name: `u${i}`, hash: `hu${i}`, policy: { requestsPerHour: 1 } }));
        expect((await store.updateKey(`u${i}`, { policy: given }, 2))?.policy, `updated policy ${i}`).toStrictEqual(expected);
        expect((await store.getKey(`u${i}`))?.policy, `updated policy ${i}`).toStrictEqual(expected);
      }
    },
  },
  {
    name: 'names and notes keep any text: unicode, quotes, empty notes',
    async run(store) {
      const texts = ['Zoë 🙂', 'o\'brien "quoted" \\back', 'tab\there', ' spaced '];
      for (const [i, text] of texts.entries()) {
        await store.createKey(newKey({ id: `k${i}`, name: text, notes: text, hash: `h${i}` }));
        const read = await store.getKey(text);
        expect(read?.id).toBe(`k${i}`);
        expect(read?.notes).toBe(text);
      }
      expect(await store.getKey('spaced')).toBeNull();
    },
  },
];
