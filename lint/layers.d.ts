/** One layer of the architecture (see lint/layers.js). */
export type Layer = { layer: string; files: string; mayImport: readonly string[]; packages: readonly string[] };
export declare const RESTRICTED_PACKAGES: readonly string[];
export declare const LAYERS: readonly Layer[];
export declare function renderLayerTable(layers?: readonly Layer[]): string;
