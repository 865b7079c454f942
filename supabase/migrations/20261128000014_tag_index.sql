-- The tag index: public.image_tags, kept by the tag-indexer-worker from image.analyzed events
-- (subscription `tag_indexer`). GET /images?tag= and GET /tags read it under the caller's row
-- level security (20261128000010 has its policies).

-- A tag as the index keeps it: trimmed, lower-case, at most 64 characters ('' = no tag).
-- shared/tags.ts normaliseTag() is the same rule for the tags a client asks for; a test checks
-- the two agree.
create or replace function darkroom.normalise_tag(p_tag text) returns text
language sql immutable
set search_path = ''
as $$
  select btrim(left(lower(btrim(p_tag)), 64))
$$;

-- Replaces the index of one image with the tags of its current analysis, normalised and
-- deduplicated. Reading the analysis (not the event's payload) makes it order-insensitive: a
-- late event of an older analysis writes the newest tags all the same. Returns the tag count.
create or replace function darkroom.replace_image_tags(p_image_id uuid) returns integer
language plpgsql volatile
security definer
set search_path = ''
as $$
declare
  v_image public.images;
  v_count integer;
begin
  -- The row lock serialises two indexings of one image.
  select im.* into v_image from public.images im where im.id = p_image_id for update;
  -- GUARD: the image is gone (its task was deleted): nothing to index.
  if not found then
    return 0;
  end if;
  delete from public.image_tags it where it.image_id = v_image.id;
  insert into public.image_tags (tag, image_id, task_id, owner)
  select distinct darkroom.normalise_tag(t.value), v_image.id, v_image.task_id, v_image.owner
    from jsonb_array_elements_text(
           case when jsonb_typeof(v_image.analysis -> 'tags') = 'array'
                then v_image.analysis -> 'tags' else '[]'::jsonb end) t
   where darkroom.normalise_tag(t.value) <> '';
  get diagnostics v_count = row_count;
  return v_count;
end
$$;

revoke all on function darkroom.normalise_tag(text), darkroom.replace_image_tags(uuid)
  from public, anon, authenticated;
grant execute on function darkroom.replace_image_tags(uuid) to service_role;

-- The images newest first under a tag: the index's lookup, then the order.
create index if not exists images_created_at_id_idx on public.images (created_at desc, id desc);

-- Its worker exists now: enable the subscription and back-fill every image.analyzed already
-- in the log.
update darkroom.subscriptions set enabled = true where name = 'tag_indexer';
select darkroom.replay_events('tag_indexer', 0);
