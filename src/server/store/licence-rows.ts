/**
 * The licences as the reference seeds them (its migrations/licences: names, URLs and pks in the order
 * of its licenses.csv, sub-descriptors from its per-licence files), as one INSERT that both
 * databases' migrations run (SQLite migration 4, PostgreSQL migration 1). Frozen: a change is a new
 * migration, never an edit here.
 */
export const LICENCE_ROWS = `INSERT INTO licences (pk, name, url, permissions, conditions, limitations, domains) VALUES
    (1, 'AGPL3', 'https://opensource.org/licenses/AGPL-3.0', '["Commercial use", "Modification", "Distribution", "Patent use", "Private use"]', '["License and copyright notice", "State changes", "Disclose source", "Network use is distribution", "Same license"]', '["Liability", "Warranty"]', '["Software", "Models"]'),
    (2, 'Apache 2.0', 'https://opensource.org/licenses/Apache-2.0', '["Commercial use", "Modification", "Distribution", "Patent use", "Private use"]', '["License and copyright notice", "State changes"]', '["Trademark use", "Liability", "Warranty"]', '["Software", "Models"]'),
    (3, 'BSD 2-clause', 'https://opensource.org/licenses/BSD-2-Clause', '["Commercial use", "Modification", "Distribution", "Private use"]', '["License and copyright notice"]', '["Liability", "Warranty"]', '["Software", "Models"]'),
    (4, 'BSD 3-clause', 'https://opensource.org/licenses/BSD-3-Clause', '["Commercial use", "Modification", "Distribution", "Private use"]', '["License and copyright notice"]', '["Liability", "Warranty"]', '["Software", "Models"]'),
    (5, 'CC0', 'https://creativecommons.org/share-your-work/public-domain/cc0/', '["Commercial use", "Modification", "Distribution", "Private use"]', '[]', '["Liability", "Trademark use", "Patent use", "Warranty"]', '["Data", "Models"]'),
    (6, 'CC-BY-4.0', 'https://creativecommons.org/licenses/by/4.0/', '["Commercial use", "Modification", "Distribution", "Private use"]', '["License and copyright notice", "State changes"]', '["Liability", "Trademark use", "Patent use", "Warranty"]', '["Data", "Models"]'),
    (7, 'CC-BY-SA-4.0', 'http://creativecommons.org/licenses/by-sa/4.0/', '["Commercial use", "Distribution", "Modification", "Private use"]', '["License and copyright notice", "Same license", "State changes"]', '["Liability", "Patent use", "Trademark use", "Warranty"]', '["Data", "Models"]'),
    (8, 'GPL2', 'https://opensource.org/licenses/GPL-2.0', '["Commercial use", "Modification", "Distribution", "Private use"]', '["License and copyright notice", "State changes", "Disclose source", "Same license"]', '["Liability", "Warranty"]', '["Software", "Models"]'),
    (9, 'GPL3', 'https://opensource.org/licenses/GPL-3.0', '["Commercial use", "Modification", "Distribution", "Patent use", "Private use"]', '["License and copyright notice", "State changes", "Disclose source", "Same license"]', '["Liability", "Warranty"]', '["Software", "Models"]'),
    (10, 'LGPL3', 'https://opensource.org/licenses/LGPL-3.0', '["Commercial use", "Modification", "Distribution", "Patent use", "Private use"]', '["License and copyright notice", "Disclose source", "State changes", "Same license (library)"]', '["Liability", "Warranty"]', '["Software", "Models"]'),
    (11, 'MIT', 'https://opensource.org/licenses/MIT', '["Commercial use", "Modification", "Distribution", "Private use"]', '["License and copyright notice"]', '["Liability", "Warranty"]', '["Software", "Models"]'),
    (12, 'Mozilla Public License 2.0', 'https://opensource.org/licenses/MPL-2.0', '["Commercial use", "Distribution", "Modification", "Patent use", "Private use"]', '["Disclose source", "License and copyright notice", "Same license (file)"]', '["Liability", "Trademark use", "Warranty"]', '["Software", "Models"]'),
    (13, 'The Unlicense', 'https://unlicense.org/', '["Commercial use", "Distribution", "Modification", "Private use"]', '[]', '["Liability", "Warranty"]', '["Software", "Models"]'),
    (14, 'Proprietary', 'https://en.wikipedia.org/wiki/All_rights_reserved', '[]', '["License and copyright notice"]', '[]', '["Software", "Models"]');`;
