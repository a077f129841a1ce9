// Vite build of the facekit console. Output web/dist (git-ignored) is what `facekit serve` serves at `/`.
// base './' keeps every asset URL relative, so the console works from any mount point; the router is
// hash-based, so the server needs no SPA fallback.
import { defineConfig } from 'vite';

export default defineConfig({
  base: './',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: false, chunkSizeWarningLimit: 200 },
  server: { proxy: { '/api': process.env.FK_API || 'http://127.0.0.1:8080' } },
});
