-- What each stage's success records, named by darkroom.stages.record_result and called by
-- darkroom.complete_stage inside its transaction. Each takes the locked task and the worker's
-- result and returns the payload of the stage's completion event (durationMs is added by
-- complete_stage). The result shapes are shared/stages.ts's StageResults.

-- download: {sha256, contentType, byteSize, storagePath} -> the images row (a re-download after
-- a retry replaces what the later stages had learned).
create or replace function darkroom.record_download(p_task public.tasks, p_result jsonb)
returns jsonb
language plpgsql volatile
set search_path = ''
as $$
declare
  v_image public.images;
begin
  insert into public.images as im (task_id, owner, sha256, content_type, byte_size, storage_path)
  values (p_task.id, p_task.owner, p_result ->> 'sha256', p_result ->> 'contentType',
          (p_result ->> 'byteSize')::bigint, p_result ->> 'storagePath')
  on conflict (task_id) do update
    set sha256 = excluded.sha256, content_type = excluded.content_type,
        byte_size = excluded.byte_size, storage_path = excluded.storage_path,
        width = null, height = null, format = null, metadata = null, analysis = null,
        thumbnail = null, updated_at = now()
  returning * into v_image;
  return jsonb_build_object('imageId', v_image.id, 'sha256', v_image.sha256,
                            'contentType', v_image.content_type, 'byteSize', v_image.byte_size);
end
$$;

-- metadata: {width, height, format, metadata, thumbnail} -> the image's header and metadata.
create or replace function darkroom.record_metadata(p_task public.tasks, p_result jsonb)
returns jsonb
language plpgsql volatile
set search_path = ''
as $$
declare
  v_image public.images;
begin
  update public.images im
     set width = (p_result ->> 'width')::integer, height = (p_result ->> 'height')::integer,
         format = p_result ->> 'format', metadata = p_result -> 'metadata',
         thumbnail = nullif(p_result -> 'thumbnail', 'null'::jsonb), updated_at = now()
   where im.task_id = p_task.id
  returning * into v_image;
  -- GUARD: the download stage made the row; without it there is nothing to describe.
  if not found then
    raise exception 'task % has no image to describe', p_task.id using errcode = 'P0002';
  end if;
  return jsonb_build_object('imageId', v_image.id, 'width', v_image.width,
                            'height', v_image.height, 'format', v_image.format,
                            'make', v_image.metadata -> 'make', 'model', v_image.metadata -> 'model',
                            'takenAt', v_image.metadata -> 'takenAt',
                            'orientation', v_image.metadata -> 'orientation',
                            'gps', v_image.metadata -> 'gps',
                            'partial', coalesce(v_image.metadata -> 'partial', 'false'::jsonb));
end
$$;

-- ai: darkroom.record_analysis is defined with the analyses it records, reuses and books
-- (20261128000022_analysis_reuse_and_budgets.sql).

-- Any other stage: its result is kept under images.results -> <stage>; the event carries the
-- image id. A stage needs a recorder of its own only to fill columns or shape its event.
create or replace function darkroom.record_generic(p_task public.tasks, p_result jsonb)
returns jsonb
language plpgsql volatile
set search_path = ''
as $$
declare
  v_image public.images;
begin
  update public.images im
     set results = im.results || jsonb_build_object(p_task.stage, p_result), updated_at = now()
   where im.task_id = p_task.id
  returning * into v_image;
  -- GUARD: a stage before the download has no image row to keep its result in.
  if not found then
    raise exception 'task % has no image for stage %', p_task.id, p_task.stage
      using errcode = 'P0002';
  end if;
  return jsonb_build_object('imageId', v_image.id);
end
$$;
