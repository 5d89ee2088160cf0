import assert from 'node:assert/strict';
import { test } from 'node:test';
import { icuItemsToRemove, symbolFileRange } from './node-runtime.ts';

test("the image's ICU data keeps root, English and every locale-free item; other locales, converters, transliteration and dictionaries go", () => {
  const items = [
    'root.res',
    'en.res',
    'en_US.res',
    'en_GB.res',
    'de.res',
    'zh_Hant_TW.res',
    'pool.res',
    'res_index.res',
    'metaZones.res',
    'zoneinfo64.res',
    'timezoneTypes.res',
    'supplementalData.res',
    'plurals.res',
    'nfkc.nrm',
    'cnvalias.icu',
    'ibm-943_P15A-2003.cnv',
    'coll/root.res',
    'coll/en.res',
    'coll/de.res',
    'coll/ucadata.icu',
    'zone/fr.res',
    'zone/tzdbNames.res',
    'brkitr/word.brk',
    'brkitr/cjdict.dict',
    'translit/root.res',
  ];
  assert.deepEqual(icuItemsToRemove(items), [
    'de.res',
    'zh_Hant_TW.res',
    'ibm-943_P15A-2003.cnv',
    'coll/de.res',
    'zone/fr.res',
    'brkitr/cjdict.dict',
    'translit/root.res',
  ]);
});

test("a symbol's bytes are found in the file through its section", () => {
  const nm = [
    '0000000000831000 0000000000000010 T main',
    '0000000004bb75c0 0000000001f92680 R icudt78_dat',
    '                 U free',
  ].join('\n');
  const sections = [
    '  [13] .text             PROGBITS        0000000000831000 431000 2c56e39 00  AX  0   0 4096',
    '  [16] .rodata           PROGBITS        0000000003489000 3089000 37f3b2c 00   A  0   0 4096',
  ].join('\n');
  assert.deepEqual(symbolFileRange(nm, sections, /^icudt\d+_dat$/), {
    name: 'icudt78_dat',
    offset: 0x3089000 + (0x4bb75c0 - 0x3489000),
    size: 0x1f92680,
  });
  assert.throws(() => symbolFileRange('', sections, /^icudt\d+_dat$/), /no symbol matching/);
});
