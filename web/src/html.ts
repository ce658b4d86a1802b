import htm from 'htm';
import { h } from 'preact';

/** Tagged templates for Preact: no JSX step, the source reads as it renders. */
export const html = htm.bind(h);
