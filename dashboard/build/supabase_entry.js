// The entry of dashboard/supabase_js.js, the one bundle the dashboard loads: supabase-js for the
// sign-in (auth) and Realtime. Rebuild with `deno task bundle:dashboard` (the version is the
// import map's); the output is committed, so serving the page needs no build step.
export { createClient } from "@supabase/supabase-js";
